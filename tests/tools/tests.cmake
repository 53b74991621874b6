sluice_add_test(NAME test_sluice_arena SOURCES tools/test_sluice_arena.c LABELS unit
                TIMEOUT 30 ARGS $<TARGET_FILE:sluice-arena>)
