# Script mode, run by ctest (see CMakeLists.txt beside this file):
#   cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DCONSUMER_DIR=... -DWORK_DIR=... -DCONFIG=...
#         -DCXX_COMPILER=... -DGENERATOR=... [-DSANITIZE=...] [-DPKG_CONFIG=...]
#         [-DCOMPONENTS=redis,nats]
#         -P install_test.cmake
# 1. cmake --install BUILD_DIR into WORK_DIR/prefix;
# 2. configures consumer/ with only that prefix to find eventlite in, builds it, runs it;
# 3. with PKG_CONFIG, compiles consumer/main.cpp with the flags that
#    `pkg-config --cflags --libs eventlite` gives for that prefix, and runs it;
# 4. each of COMPONENTS (redis, nats) is built both ways too: consumer/<c>_app.cpp
#    with find_package(eventlite COMPONENTS ...) (consumer-build/<c>_app) and with
#    eventlite-<c>.pc (pkg-config/<c>_app); installed_components_test runs them.
# Any failure stops the script with an error, which fails the test.
cmake_minimum_required(VERSION 3.20)

foreach(var BUILD_DIR SOURCE_DIR CONSUMER_DIR WORK_DIR CXX_COMPILER GENERATOR)
  if(NOT ${var})
    message(FATAL_ERROR "install_test.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT CONFIG)
  set(CONFIG RelWithDebInfo)
endif()

set(components_arg "${COMPONENTS}")  # comma-separated, passed on as it is
string(REPLACE "," ";" COMPONENTS "${COMPONENTS}")
set(prefix ${WORK_DIR}/prefix)
set(consumer_build ${WORK_DIR}/consumer-build)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

# run(step command...): runs the command, fails with its output if it fails.
function(run step)
  execute_process(COMMAND ${ARGN}
    RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${step} failed (${result}):\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

run("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix} --config ${CONFIG})

# The installed package must name no file of the source or build tree.
file(GLOB_RECURSE package_files ${prefix}/*/cmake/eventlite/*.cmake
  ${prefix}/*/pkgconfig/eventlite.pc)
if(NOT package_files)
  message(FATAL_ERROR "no package files under ${prefix}/*/cmake/eventlite")
endif()
foreach(f IN LISTS package_files)
  file(READ ${f} text)
  foreach(tree ${SOURCE_DIR} ${BUILD_DIR})
    string(FIND "${text}" "${tree}" at)
    if(NOT at EQUAL -1)
      message(FATAL_ERROR "${f} refers to ${tree}: the installed package is not relocatable")
    endif()
  endforeach()
endforeach()

# A static library built with sanitizers needs them at the consumer's link too.
set(flags "")
if(SANITIZE)
  set(flags "-fsanitize=${SANITIZE}")
endif()

run("configuring the consumer" ${CMAKE_COMMAND}
  -S ${CONSUMER_DIR} -B ${consumer_build} -G ${GENERATOR}
  -DCMAKE_BUILD_TYPE=${CONFIG}
  -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
  "-DCMAKE_CXX_FLAGS=${flags}"
  "-DCMAKE_EXE_LINKER_FLAGS=${flags}"
  -DCMAKE_PREFIX_PATH=${prefix}
  -DEVENTLITE_CONSUMER_COMPONENTS=${components_arg}
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
  -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)

# find_package must have found the installed copy, not another one.
file(STRINGS ${consumer_build}/CMakeCache.txt found REGEX "^eventlite_DIR:")
string(REGEX REPLACE "^[^=]*=" "" found "${found}")
file(REAL_PATH "${found}" found)
file(REAL_PATH "${prefix}" real_prefix)
string(FIND "${found}" "${real_prefix}/" at)
if(NOT at EQUAL 0)
  message(FATAL_ERROR "the consumer found eventlite in '${found}', not under ${prefix}")
endif()

run("building the consumer" ${CMAKE_COMMAND} --build ${consumer_build} --config ${CONFIG})

set(app ${consumer_build}/app)
if(NOT EXISTS ${app})
  set(app ${consumer_build}/${CONFIG}/app)  # multi-config generators
endif()
run("running the consumer" ${app})
string(FIND "${last_output}" "\"type\":\"Greeted\"" at)
if(at EQUAL -1)
  message(FATAL_ERROR "the consumer printed an unexpected line: ${last_output}")
endif()
message(STATUS "installed package works: ${last_output}")

# --- the same consumer, built with pkg-config alone --------------------------------
if(NOT PKG_CONFIG)
  message(WARNING "pkg-config not found: the .pc consumer was not built")
  return()
endif()
file(GLOB_RECURSE pc_files ${prefix}/*/pkgconfig/eventlite.pc)
list(LENGTH pc_files pc_count)
if(NOT pc_count EQUAL 1)
  message(FATAL_ERROR "expected one eventlite.pc under ${prefix}, found: ${pc_files}")
endif()
get_filename_component(pc_dir ${pc_files} DIRECTORY)
set(ENV{PKG_CONFIG_PATH} "${pc_dir}")

# pkg-config must have found the installed copy, and its prefix must be that tree.
run("pkg-config --variable=prefix" ${PKG_CONFIG} --variable=prefix eventlite)
string(STRIP "${last_output}" pc_prefix)
file(REAL_PATH "${pc_prefix}" pc_prefix)
if(NOT pc_prefix STREQUAL real_prefix)
  message(FATAL_ERROR "eventlite.pc's prefix is '${pc_prefix}', not ${real_prefix}")
endif()
run("pkg-config --cflags --libs" ${PKG_CONFIG} --cflags --libs eventlite)
string(STRIP "${last_output}" pc_flags)
separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
set(pc_app ${WORK_DIR}/pkg-config-app)
run("compiling the consumer with pkg-config's flags" ${CXX_COMPILER} -std=c++20 ${flags}
  ${CONSUMER_DIR}/main.cpp -o ${pc_app} ${pc_flags})
run("running the pkg-config consumer" ${pc_app})
string(FIND "${last_output}" "\"type\":\"Greeted\"" at)
if(at EQUAL -1)
  message(FATAL_ERROR "the pkg-config consumer printed an unexpected line: ${last_output}")
endif()
message(STATUS "pkg-config package works: ${last_output}")

# Each broker component, compiled with its own .pc file's flags; the programs are run
# against real servers by installed_components_test.
file(MAKE_DIRECTORY ${WORK_DIR}/pkg-config)
foreach(component IN LISTS COMPONENTS)
  run("pkg-config --cflags --libs eventlite-${component}" ${PKG_CONFIG} --cflags --libs
    eventlite-${component})
  string(STRIP "${last_output}" pc_flags)
  separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
  run("compiling ${component}_app with pkg-config's flags" ${CXX_COMPILER} -std=c++20
    ${flags} ${CONSUMER_DIR}/${component}_app.cpp -o ${WORK_DIR}/pkg-config/${component}_app
    ${pc_flags})
  message(STATUS "pkg-config eventlite-${component} builds")
endforeach()
