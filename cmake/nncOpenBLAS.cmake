# nncOpenBLAS.cmake — finds OpenBLAS (the library and its cblas.h) as the imported target
# nnc::openblas, for nnc's own build and for nncConfig.cmake alike.
#
# CMake's FindBLAS gives the library but not cblas.h, which the generated C includes, and
# OpenBLAS's own OpenBLASConfig.cmake sets variables only (no target) and is missing from
# some distributions; two find calls are all it takes.  Debian's libopenblas-dev puts
# cblas.h in the multiarch include directory (other systems: include/openblas).
# Sets NNC_OPENBLAS_FOUND; the caller decides whether a miss is fatal.
if(TARGET nnc::openblas)
  set(NNC_OPENBLAS_FOUND TRUE)
  return()
endif()
find_library(NNC_OPENBLAS_LIBRARY NAMES openblas DOC "OpenBLAS, the BLAS nnc's code calls")
find_path(NNC_CBLAS_INCLUDE_DIR NAMES cblas.h PATH_SUFFIXES openblas
          DOC "the directory of OpenBLAS's cblas.h")
if(NNC_OPENBLAS_LIBRARY AND NNC_CBLAS_INCLUDE_DIR)
  add_library(nnc::openblas UNKNOWN IMPORTED)
  set_target_properties(nnc::openblas PROPERTIES
    IMPORTED_LOCATION "${NNC_OPENBLAS_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${NNC_CBLAS_INCLUDE_DIR}")
  set(NNC_OPENBLAS_FOUND TRUE)
else()
  set(NNC_OPENBLAS_FOUND FALSE)
endif()
