sluice_add_test(NAME test_sluice_arena SOURCES tools/test_sluice_arena.c LABELS unit
                TIMEOUT 30 ARGS $<TARGET_FILE:sluice-arena>)
# sluice-inspect on a live flow; it kills a worker (chaos: run alone).
sluice_add_test(NAME test_sluice_inspect SOURCES tools/test_sluice_inspect.c LABELS chaos
                TIMEOUT 60 ARGS $<TARGET_FILE:sluice-inspect>)
