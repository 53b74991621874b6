sluice_add_test(NAME test_arena SOURCES shm/test_arena.c LABELS unit TIMEOUT 30)
sluice_add_test(NAME test_errors SOURCES shm/test_errors.c LABELS unit TIMEOUT 10)
sluice_add_test(NAME test_blocks SOURCES shm/test_blocks.c LABELS unit TIMEOUT 30)
sluice_add_test(NAME test_blocks_stress SOURCES shm/test_blocks_stress.c LABELS stress
                TIMEOUT 120)
sluice_add_test(NAME test_blocks_reclaim SOURCES shm/test_blocks_reclaim.c LABELS chaos
                TIMEOUT 60)
# The same test with threads in one process sharing one mapping: what
# ThreadSanitizer can see (it cannot follow processes or a second mapping).
sluice_add_test(NAME test_blocks_stress_threads SOURCES shm/test_blocks_stress.c
                LABELS "stress;tsan" TIMEOUT 120 ARGS 4 3000000 1 threads)
