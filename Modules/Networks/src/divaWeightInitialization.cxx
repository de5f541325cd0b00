#include "divaWeightInitialization.h"

namespace diva
{
namespace
{
thread_local bool skipWeightInitialization = false;
} // namespace

SkipWeightInitialization::SkipWeightInitialization() : m_Previous(skipWeightInitialization)
{
  skipWeightInitialization = true;
}

SkipWeightInitialization::~SkipWeightInitialization()
{
  skipWeightInitialization = m_Previous;
}

bool
WeightInitializationSkipped()
{
  return skipWeightInitialization;
}

} // namespace diva
