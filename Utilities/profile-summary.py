#!/usr/bin/env python3
"""Self time per operator in a chrome trace written by LibTorch's profiler (DivAttentionNetworkBench --profile).

Usage: Utilities/profile-summary.py TRACE.json [TOP]

LibTorch records nested operators (conv3d > convolution > _convolution > mkldnn_convolution); the self time of an
event is its duration minus that of the events directly inside it on the same thread, so the rows add up to the
traced wall time once and name the kernels that did the work.
"""
import collections
import json
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        trace = json.load(f)
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    events = [e for e in events if e.get("ph") == "X"]
    events.sort(key=lambda e: (e["tid"], e["ts"], -e["dur"]))
    children = collections.Counter()
    stack = []
    for index, event in enumerate(events):
        while stack and (events[stack[-1]]["tid"] != event["tid"]
                         or events[stack[-1]]["ts"] + events[stack[-1]]["dur"] <= event["ts"]):
            stack.pop()
        if stack:
            children[stack[-1]] += event["dur"]
        stack.append(index)
    self_time = collections.Counter()
    calls = collections.Counter()
    for index, event in enumerate(events):
        self_time[event["name"]] += event["dur"] - children[index]
        calls[event["name"]] += 1
    total = sum(self_time.values())
    print(f"{'self ms':>10} {'share':>6} {'calls':>6}  operator   (total {total / 1e3:.0f} ms)")
    for name, micros in self_time.most_common(top):
        print(f"{micros / 1e3:10.1f} {100 * micros / total:5.1f}% {calls[name]:6d}  {name}")


if __name__ == "__main__":
    main()
