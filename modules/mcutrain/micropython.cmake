# Build mcutrain into CMake-based ports (rp2, esp32): USER_C_MODULES=<repo>/modules/micropython.cmake
add_library(usermod_mcutrain INTERFACE)

file(GLOB MCUTRAIN_CORE_SOURCES ${CMAKE_CURRENT_LIST_DIR}/../../c_src/*.c)
file(GLOB MCUTRAIN_MOD_SOURCES ${CMAKE_CURRENT_LIST_DIR}/*.c)

target_sources(usermod_mcutrain INTERFACE ${MCUTRAIN_MOD_SOURCES} ${MCUTRAIN_CORE_SOURCES})
target_include_directories(usermod_mcutrain INTERFACE ${CMAKE_CURRENT_LIST_DIR}/../../c_src)
target_compile_options(usermod_mcutrain INTERFACE -ffp-contract=off)

# The module's own sources at -O2 (the kernels' speed), the rest of MicroPython at the port's
# optimisation. Source properties belong to a directory: this one is the including CMakeLists'
# (rp2's top level, esp32's main component), where the firmware target compiles these sources.
set_source_files_properties(${MCUTRAIN_MOD_SOURCES} ${MCUTRAIN_CORE_SOURCES} PROPERTIES COMPILE_OPTIONS -O2)

target_link_libraries(usermod INTERFACE usermod_mcutrain)
