// Linked into every ITK test program: registers the image IO factories when the program starts, in every build mode
// (a static DivAttention library's own start-up registration is linked only where something of its object is used).
#include "itkDivAttentionRuntime.h"

namespace
{
const bool g_Registered = (itk::DivAttentionRuntime::RegisterImageIOFactories(), true);
} // namespace
