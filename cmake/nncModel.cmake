# nncModel.cmake — nnc_add_model(): compile a model file into a CMake target at build time.
#
#   nnc_add_model(<target> <model.nn> [NAME <name>] [DTYPE f32|f64] [MPI]
#                 [OPTIONS <nnc option>...])
#
# Runs nnc on <model.nn> when the model file or nnc itself changes, writing <name>.c and
# <name>.h into a directory of the build tree (${CMAKE_CURRENT_BINARY_DIR}/nnc/<target>);
# adds <name>.c to <target> (compiled as C, also in a C++ target), puts the directory of
# <name>.h on the target's include path and links nnc::nnr (the runtime, with its OpenBLAS,
# jansson, zlib and OpenMP): privately for an executable, publicly for a library, whose
# users then include <name>.h and call the model as the library does.  <name> defaults to
# the model file's name without .nn; it names the files only: the C functions are named
# after the file's `model` statement.  A relative <model.nn> is taken from the current
# source directory, and nnc runs in the model's directory, as from the command line.
# OPTIONS go to nnc as they are (for example --max-memory 2G).
#
# MPI also links nnc::nnr_mpi (with MPI's library), in the same way as nnc::nnr: the
# program's main() then calls nnr_mpi_main(<model>_info(), argc, argv) and runs under
# mpirun as one rank of a data-parallel run, as a trainer of `nnc --exe --mpi` does
# (docs/distributed.md).  nnc::nnr_mpi exists when nnc was built with Open MPI and
# find_package(MPI COMPONENTS C) succeeds where find_package(nnc) runs.
#
# Included by nncConfig.cmake (find_package(nnc)) and by nnc's own CMakeLists.txt
# (add_subdirectory), where nnc::nnc is the nnc being built: the model is regenerated
# when nnc is rebuilt.
include_guard(GLOBAL)

function(nnc_add_model target model)
  cmake_parse_arguments(PARSE_ARGV 2 arg "MPI" "NAME;DTYPE" "OPTIONS")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "nnc_add_model: unknown arguments: ${arg_UNPARSED_ARGUMENTS} "
                        "(expected NAME <name>, DTYPE f32|f64, MPI, OPTIONS <nnc options>...)")
  endif()
  if(NOT TARGET ${target})
    message(FATAL_ERROR "nnc_add_model: ${target} is not a target: create it first "
                        "(add_executable or add_library)")
  endif()
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "INTERFACE_LIBRARY")
    message(FATAL_ERROR "nnc_add_model: ${target} is an INTERFACE library, which compiles "
                        "nothing: use a STATIC or OBJECT library")
  endif()
  if(NOT TARGET nnc::nnc OR NOT TARGET nnc::nnr)
    message(FATAL_ERROR "nnc_add_model: nnc::nnc and nnc::nnr are not defined: "
                        "find_package(nnc) or add_subdirectory(nnc) first")
  endif()
  if(arg_MPI AND NOT TARGET nnc::nnr_mpi)
    _nnc_model_no_mpi()
  endif()
  # The generated file is C; a project of C++ alone would leave it uncompiled (or fail
  # to link without saying why), so say what to do instead.
  get_property(languages GLOBAL PROPERTY ENABLED_LANGUAGES)
  if(NOT "C" IN_LIST languages)
    message(FATAL_ERROR "nnc_add_model: the code nnc generates is C: enable C in the "
                        "project, e.g. project(app C CXX)")
  endif()

  get_filename_component(model "${model}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  if(NOT EXISTS "${model}")
    message(FATAL_ERROR "nnc_add_model: model file not found: ${model}")
  endif()
  get_filename_component(model_dir "${model}" DIRECTORY)
  if(NOT arg_NAME)
    get_filename_component(arg_NAME "${model}" NAME_WE)
  endif()
  if(NOT arg_NAME MATCHES "^[A-Za-z_][A-Za-z0-9_]*$")
    message(FATAL_ERROR "nnc_add_model: NAME '${arg_NAME}' is not a C identifier "
                        "(it names ${arg_NAME}.c and ${arg_NAME}.h): give NAME")
  endif()
  set(dtype_option "")
  if(arg_DTYPE)
    if(NOT arg_DTYPE MATCHES "^(f32|f64)$")
      message(FATAL_ERROR "nnc_add_model: DTYPE must be f32 or f64, not '${arg_DTYPE}'")
    endif()
    set(dtype_option --dtype ${arg_DTYPE})
  endif()

  set(out_dir "${CMAKE_CURRENT_BINARY_DIR}/nnc/${target}")
  set(out_c "${out_dir}/${arg_NAME}.c")
  set(out_h "${out_dir}/${arg_NAME}.h")
  # In a build of nnc itself nnc::nnc is an alias of the nnc target: depending on the
  # target builds nnc first and regenerates when it changes.  An installed nnc is an
  # imported target, a file that is already there.
  get_target_property(nnc_real nnc::nnc ALIASED_TARGET)
  if(nnc_real)
    set(nnc_depends ${nnc_real})
  else()
    set(nnc_depends "$<TARGET_FILE:nnc::nnc>")
  endif()
  add_custom_command(
    OUTPUT "${out_c}" "${out_h}"
    COMMAND "${CMAKE_COMMAND}" -E make_directory "${out_dir}"
    COMMAND "$<TARGET_FILE:nnc::nnc>" "${model}" -o "${out_c}" ${dtype_option} ${arg_OPTIONS}
    DEPENDS "${model}" ${nnc_depends}
    WORKING_DIRECTORY "${model_dir}"
    COMMENT "nnc: ${arg_NAME}.c and ${arg_NAME}.h from ${model}"
    VERBATIM)
  set_source_files_properties("${out_c}" PROPERTIES LANGUAGE C GENERATED TRUE)
  set_source_files_properties("${out_h}" PROPERTIES GENERATED TRUE HEADER_FILE_ONLY TRUE)
  set(scope PRIVATE)
  if(type MATCHES "LIBRARY$")
    set(scope PUBLIC)
  endif()
  target_sources(${target} PRIVATE "${out_c}" "${out_h}")
  target_include_directories(${target} ${scope} "${out_dir}")
  target_link_libraries(${target} ${scope} nnc::nnr)
  if(arg_MPI)
    target_link_libraries(${target} ${scope} nnc::nnr_mpi)
  endif()
endfunction()

# MPI without nnc::nnr_mpi: say which half is missing, when nncConfig.cmake knows
# (_nnc_mpi_missing), and what to install.
function(_nnc_model_no_mpi)
  if(_nnc_mpi_missing)
    set(why "${_nnc_mpi_missing}")
  else()
    string(CONCAT why "nnc was built without MPI, or find_package(MPI COMPONENTS C) did "
                      "not find it (install Open MPI's development files, e.g. apt-get "
                      "install libopenmpi-dev openmpi-bin, and build nnc again)")
  endif()
  message(FATAL_ERROR "nnc_add_model: MPI: nnc::nnr_mpi is not defined: ${why}")
endfunction()
