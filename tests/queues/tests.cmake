# Descriptor rings (queues/). Stress tests take their sizes from ARGS and
# divide them by SLUICE_TEST_SLOWDOWN in sanitizer builds.
sluice_add_test(NAME test_ring SOURCES queues/test_ring.c LABELS unit TIMEOUT 60)
foreach(pc 1 2 4)
  sluice_add_test(NAME test_ring_stress_${pc}x${pc} SOURCES queues/test_ring_stress.c
                  LABELS stress TIMEOUT 120 ARGS ${pc} ${pc} 10000000 procs)
endforeach()
# The same test with threads in one process: what ThreadSanitizer can see.
sluice_add_test(NAME test_ring_stress_threads SOURCES queues/test_ring_stress.c
                LABELS "stress;tsan" TIMEOUT 120 ARGS 4 4 5000000 threads 64)
sluice_add_test(NAME test_ring_crash SOURCES queues/test_ring_crash.c LABELS chaos TIMEOUT 60)
sluice_add_test(NAME test_ring_wakeup SOURCES queues/test_ring_wakeup.c LABELS stress TIMEOUT 240
                ARGS 1000000)
sluice_add_test(NAME test_ring_eventfd SOURCES queues/test_ring_eventfd.c LABELS unit TIMEOUT 60)
sluice_add_test(NAME test_ring_dead_sleeper SOURCES queues/test_ring_dead_sleeper.c
                LABELS chaos TIMEOUT 60)
# membarrier registration and the fallback of a sleeper that may not call it.
sluice_add_test(NAME test_ring_membarrier SOURCES queues/test_ring_membarrier.c LABELS unit
                TIMEOUT 60)
sluice_add_test(NAME test_ring_intent SOURCES queues/test_ring_intent.c LABELS unit TIMEOUT 30)
sluice_add_test(NAME test_ring_priority SOURCES queues/test_ring_priority.c LABELS unit TIMEOUT 30)
# Lanes with impossible counters (scribbled on): refused, then mended.
sluice_add_test(NAME test_ring_mend SOURCES queues/test_ring_mend.c LABELS unit TIMEOUT 30)
