sluice_add_test(NAME test_sluice_arena SOURCES tools/test_sluice_arena.c LABELS unit
                TIMEOUT 30 ARGS $<TARGET_FILE:sluice-arena>)
# sluice-inspect on a live flow; it kills a worker (chaos: run alone).
sluice_add_test(NAME test_sluice_inspect SOURCES tools/test_sluice_inspect.c LABELS chaos
                TIMEOUT 60 ARGS $<TARGET_FILE:sluice-inspect>)
# The live view under tmux (skipped where tmux is not installed).
sluice_add_test(NAME test_sluice_inspect_live SOURCES tools/test_sluice_inspect_live.c LABELS unit
                TIMEOUT 60 ARGS $<TARGET_FILE:sluice-inspect>)
