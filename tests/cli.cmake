# The pcihole-plan example: the q35 plan, its JSON, and every bad-argument class.
if(PCIHOLE_EXAMPLES)
  add_test(NAME cli_plan COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/cli_test.sh $<TARGET_FILE:pcihole-plan>)
  set_tests_properties(cli_plan PROPERTIES LABELS "unit" TIMEOUT 120)
endif()
