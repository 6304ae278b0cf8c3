# The example launcher (examples/launch/) and the benchmark
# (examples/bench.sh), end to end on /dev/kvm.  The kvm-labelled tests exit 77
# without a usable /dev/kvm, which ctest reports as skipped.
if(TARGET pcihole-launch)
  add_test(NAME launch_badargs
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/launch_badargs.sh $<TARGET_FILE:pcihole-launch>)
  set_tests_properties(launch_badargs PROPERTIES LABELS "unit" TIMEOUT 60)

  add_test(NAME launch_modes
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/launch_modes.sh $<TARGET_FILE:pcihole-launch>)
  set_tests_properties(launch_modes PROPERTIES LABELS "kvm" SKIP_RETURN_CODE 77 TIMEOUT 600)

  # Shadowed functions (--shadow): exits by class against tests/launch_oracle.sh.
  add_test(NAME launch_shadow
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/launch_shadow.sh $<TARGET_FILE:pcihole-launch>)
  set_tests_properties(launch_shadow PROPERTIES LABELS "kvm" SKIP_RETURN_CODE 77 TIMEOUT 600)

  add_test(NAME launch_bench
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/launch_bench.sh ${PROJECT_SOURCE_DIR} $<TARGET_FILE:pcihole-launch>)
  set_tests_properties(launch_bench PROPERTIES LABELS "kvm" SKIP_RETURN_CODE 77 TIMEOUT 600)
endif()

# The minimal sample VMM (examples/sample-vmm.c), both teardown orders and mmio mode.
if(TARGET sample-vmm)
  add_test(NAME launch_sample
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/launch_sample.sh $<TARGET_FILE:sample-vmm>)
  set_tests_properties(launch_sample PROPERTIES LABELS "kvm" SKIP_RETURN_CODE 77 TIMEOUT 120)
endif()
