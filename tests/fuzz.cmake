# libFuzzer harnesses for the pure core (tests/fuzz/), clang only.
#
# The library sources are compiled a second time with the fuzzer's coverage
# instrumentation and ASan/UBSan, so libFuzzer sees the branches of lib/ and
# not just those of the harness.  ctest gets a short smoke run per harness
# (label "fuzz"): every seed and regression input once, then a few thousand
# mutations into a scratch corpus in the build tree, never into the sources.
option(PCIHOLE_FUZZ "Build the libFuzzer harnesses in tests/fuzz (needs clang)" OFF)

set(PCIHOLE_FUZZ_HARNESSES parse plan)

if(PCIHOLE_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "PCIHOLE_FUZZ needs clang (-DCMAKE_C_COMPILER=clang), not ${CMAKE_C_COMPILER_ID}")
  endif()

  set(PCIHOLE_FUZZ_SAN address,undefined)
  set(PCIHOLE_FUZZ_CFLAGS -g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=all)

  add_library(pcihole_fuzzlib STATIC ${PCIHOLE_SOURCES})
  target_compile_definitions(pcihole_fuzzlib PRIVATE _GNU_SOURCE)
  target_compile_options(pcihole_fuzzlib PRIVATE ${PCIHOLE_FUZZ_CFLAGS}
    -fsanitize=fuzzer-no-link,${PCIHOLE_FUZZ_SAN})
  target_include_directories(pcihole_fuzzlib PUBLIC
    ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/lib)
  target_link_libraries(pcihole_fuzzlib PUBLIC Threads::Threads)

  foreach(h ${PCIHOLE_FUZZ_HARNESSES})
    set(t fuzz_${h})
    add_executable(${t} ${CMAKE_CURRENT_LIST_DIR}/fuzz/${t}.c)
    target_compile_definitions(${t} PRIVATE _GNU_SOURCE)
    target_compile_options(${t} PRIVATE ${PCIHOLE_FUZZ_CFLAGS}
      -fsanitize=fuzzer,${PCIHOLE_FUZZ_SAN})
    target_link_options(${t} PRIVATE -fsanitize=fuzzer,${PCIHOLE_FUZZ_SAN})
    target_link_libraries(${t} PRIVATE pcihole_fuzzlib)

    # Inputs named as files are run once each; a missing regressions dir is fine.
    file(GLOB seeds CONFIGURE_DEPENDS
      ${CMAKE_CURRENT_LIST_DIR}/fuzz/corpus_${h}/*
      ${CMAKE_CURRENT_LIST_DIR}/fuzz/regressions/${h}-*)
    add_test(NAME ${t}_seeds COMMAND ${t} ${seeds})
    set(scratch ${CMAKE_CURRENT_BINARY_DIR}/${t}_smoke)
    file(MAKE_DIRECTORY ${scratch})
    add_test(NAME ${t}_smoke COMMAND ${t} -runs=20000 -max_total_time=30 -seed=1
      -dict=${CMAKE_CURRENT_LIST_DIR}/fuzz/${t}.dict
      -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/${t}-
      ${scratch} ${CMAKE_CURRENT_LIST_DIR}/fuzz/corpus_${h})
    set_tests_properties(${t}_seeds ${t}_smoke PROPERTIES LABELS "fuzz" TIMEOUT 120)
  endforeach()
endif()

# The cmocka replay of corpora and regressions (tests/test_fuzz_regressions.c)
# builds with any compiler; tell it where the inputs live.
if(TARGET test_fuzz_regressions)
  target_compile_definitions(test_fuzz_regressions PRIVATE
    PCIHOLE_FUZZ_DIR="${CMAKE_CURRENT_LIST_DIR}/fuzz")
endif()
