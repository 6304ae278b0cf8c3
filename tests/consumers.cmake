# Out-of-tree consumers of the INSTALLED library (tests/consumers/run.sh):
# cmake --install into a temporary prefix, then a pkg-config consumer, a
# find_package(pcihole) consumer and, with Debian's cargo/rustc, the Rust
# consumer examples/rust-vmm.  Needs a complete build (it installs this tree).
add_test(NAME consumers
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/consumers/run.sh ${CMAKE_BINARY_DIR})
set_tests_properties(consumers PROPERTIES LABELS "consumers" TIMEOUT 1800
  SKIP_RETURN_CODE 77)
