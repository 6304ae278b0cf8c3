# Out-of-tree consumers of the INSTALLED library (tests/consumers/run.sh):
# cmake --install into a temporary prefix, then a pkg-config consumer (shared
# and -static), a find_package(pcihole) consumer (pcihole::pcihole and
# pcihole::pcihole_static) and, with Debian's cargo/rustc, the Rust consumer
# examples/rust-vmm.  Needs a complete build (it installs this tree).
# Not registered for sanitizer builds: consumers built without -fsanitize cannot
# load an instrumented libpcihole.so.
if(PCIHOLE_SANITIZE)
  message(STATUS "consumers test not registered: PCIHOLE_SANITIZE=${PCIHOLE_SANITIZE}")
else()
  add_test(NAME consumers
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/consumers/run.sh ${CMAKE_BINARY_DIR})
  set_tests_properties(consumers PROPERTIES LABELS "consumers" TIMEOUT 1800
    SKIP_RETURN_CODE 77)
endif()
