sluice_add_test(NAME test_arena SOURCES shm/test_arena.c LABELS unit TIMEOUT 30)
sluice_add_test(NAME test_errors SOURCES shm/test_errors.c LABELS unit TIMEOUT 10)
