# Latency CDFs: one line per data file, each "value_ns fraction" lines
# headed "# title: NAME" (bench/common/metrics.c, bench_plot_cdf).
# Variables (gnuplot -e): term, out, ttl, files (space-separated names,
# relative to the working directory).
set terminal term size 1000,620 noenhanced
set output out
set title ttl
set logscale x
set format x "%.0s%c"
set xlabel "round trip (s; log scale)"
set ylabel "share of round trips at or below"
set yrange [0:1.02]
set grid
set key bottom right
# More distinct colours than the default eight (one per series).
set linetype 9 lc rgb "#8c564b" lw 2
set linetype 10 lc rgb "#7f7f7f" lw 2
set linetype 11 lc rgb "#bcbd22" lw 2
set linetype 12 lc rgb "#17becf" lw 2
set linetype cycle 12
plot for [f in files] f using ($1 / 1e9):2 with steps lw 2 \
     title system("sed -n '1s/^# title: //p' ".f)
