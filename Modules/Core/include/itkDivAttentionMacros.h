#ifndef itkDivAttentionMacros_h
#define itkDivAttentionMacros_h

#include "itkMacro.h"

/** \file
 * Shims for ITK macros that changed between the ITK versions DivAttention supports (5.2 and newer).
 * \ingroup DivAttention
 */

/** Run-time type name of a class: ITK >= 5.4 has itkOverrideGetNameOfClassMacro and deprecates itkTypeMacro;
 * ITK 5.2 (Debian 12) has only itkTypeMacro. */
#ifdef itkOverrideGetNameOfClassMacro
#  define itkDivAttentionTypeMacro(thisClass, superclass) itkOverrideGetNameOfClassMacro(thisClass)
#else
#  define itkDivAttentionTypeMacro(thisClass, superclass) itkTypeMacro(thisClass, superclass)
#endif

/** Throws an itk::ExceptionObject whose description names the input and what is wrong with it. */
#define itkDivAttentionInputError(inputName, what)                                                                     \
  itkExceptionMacro(<< "DivAttention: input \"" << inputName << "\": " << what)

#endif
