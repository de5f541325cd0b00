#!/usr/bin/env python3
"""Copy a NIfTI-1 file (.nii.gz) of ../shared/data/real/deeplesion-crops with its voxel spacing in the right order.

Those crops hold the spacing in (slice thickness, row, column) order, pixdim[1..3] = (5, s, s) with the matching sform
diagonal, on a (512, 512, n) grid whose third axis is the slice axis: read as written they are 2.6 m wide voxels of
5 mm by 0.3-1 mm slices (the data's README gives 0.3-1.0 mm in-plane and 5 mm slices). The copy has (s, s, 5) in
pixdim and in the sform's diagonal (signs kept). A file whose spacing does not have that pattern (the first spacing
more than twice the others, which are equal) is copied unchanged, so a corrected release passes through.
  deeplesion-geometry.py IN.nii.gz OUT.nii.gz
"""
import gzip
import os
import struct
import sys


def main(source, target):
    with gzip.open(source, "rb") as f:
        data = bytearray(f.read())
    if len(data) < 348 or struct.unpack_from("<i", data, 0)[0] != 348:
        sys.exit("deeplesion-geometry: %s is not a little-endian NIfTI-1 file" % source)
    pixdim = list(struct.unpack_from("<8f", data, 76))
    first, second, third = pixdim[1:4]
    if first > 2.0 * second and abs(second - third) <= 1e-6 * max(second, third):
        pixdim[1:4] = [second, third, first]
        struct.pack_into("<8f", data, 76, *pixdim)
        if struct.unpack_from("<h", data, 254)[0] > 0:  # sform: rescale each axis's column to the new spacing
            rows = [list(struct.unpack_from("<4f", data, 280 + 16 * r)) for r in range(3)]
            for axis, spacing in enumerate(pixdim[1:4]):
                norm = sum(rows[r][axis] ** 2 for r in range(3)) ** 0.5
                for r in range(3):
                    rows[r][axis] *= spacing / norm if norm > 0.0 else 0.0
            for r in range(3):
                struct.pack_into("<4f", data, 280 + 16 * r, *rows[r])
    temporary = target + ".partial"
    with gzip.open(temporary, "wb", compresslevel=1) as f:
        f.write(data)
    os.replace(temporary, target)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
