include(${CMAKE_CURRENT_LIST_DIR}/mcutrain/micropython.cmake)
