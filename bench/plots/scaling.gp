# Worker scaling: tasks/s of a CPU-heavy 1-step flow by workers, beside
# ideal linear scaling and what the machine's CPUs allow. Data (bench_scale
# --plot-dir): "workers median min max ideal machine". Variables: term,
# out, in.
set terminal term size 1000,620 noenhanced
set output out
set title "Worker scaling: CPU-heavy 1-step flow (median of rounds, min-max bars)"
set xlabel "workers (nprocs)"
set ylabel "tasks per second"
set xtics 1
set yrange [0:*]
set grid
set key top left
plot in using 1:5 with lines lw 1 dt 2 title "ideal (linear)", \
     in using 1:6 with lines lw 1 dt 3 title "ideal on this machine's CPUs", \
     in using 1:2:3:4 with yerrorlines lw 2 pt 7 title "sluice"
