# Building Wasm guests (C -> wasm32-wasi) with clang and Debian's wasi-libc.
#   shoal_add_guest(NAME SOURCES... [CFLAGS flags...])  ->  ${SHOAL_GUEST_DIR}/NAME.wasm, in target `guests`
find_program(SHOAL_WASM_CC NAMES clang-14 clang)
set(SHOAL_GUEST_DIR ${CMAKE_BINARY_DIR}/guests)
set(SHOAL_GUEST_FLAGS --target=wasm32-wasi --sysroot=/usr -O2 -mbulk-memory -msign-ext
    -mnontrapping-fptoint -mmutable-globals -Wall -Wextra -Werror -I${CMAKE_SOURCE_DIR}/include)
if(SHOAL_WASM_CC AND EXISTS /usr/lib/wasm32-wasi/libc.a)
  set(SHOAL_HAVE_GUEST_CC ON)
else()
  set(SHOAL_HAVE_GUEST_CC OFF)
  message(STATUS "shoal: no clang + wasi-libc; Wasm guests will not be built (apt-get install wasi-libc libclang-rt-14-dev-wasm32)")
endif()
if(NOT TARGET guests)
  add_custom_target(guests ALL)
endif()

function(shoal_add_guest name)
  cmake_parse_arguments(G "" "" "SOURCES;CFLAGS" ${ARGN})
  if(NOT G_SOURCES)
    set(G_SOURCES ${G_UNPARSED_ARGUMENTS})
  endif()
  if(NOT SHOAL_HAVE_GUEST_CC)
    return()
  endif()
  set(out ${SHOAL_GUEST_DIR}/${name}.wasm)
  set(srcs)
  foreach(s ${G_SOURCES})
    get_filename_component(abs ${s} ABSOLUTE)
    list(APPEND srcs ${abs})
  endforeach()
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${SHOAL_GUEST_DIR}
    COMMAND ${SHOAL_WASM_CC} ${SHOAL_GUEST_FLAGS} ${G_CFLAGS} ${srcs} -o ${out} -Wl,--strip-debug
    DEPENDS ${srcs} ${CMAKE_SOURCE_DIR}/include/shoal_guest.h
    COMMENT "guest ${name}.wasm" VERBATIM)
  add_custom_target(guest_${name} DEPENDS ${out})
  add_dependencies(guests guest_${name})
endfunction()
