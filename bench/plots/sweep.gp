# The payload sweep: time per task of the 3-step pipelines by payload size.
# Data (bench_flow --plot-dir): "bytes sluice_p50 sluice_p99 unix_p50
# unix_p99" in ns. Variables: term, out, in.
set terminal term size 1000,620 noenhanced
set output out
set title "Payload sweep: 3-step no-op pipeline, one task at a time"
set logscale xy
set xrange [40:100e6]
lbl(b) = b >= 1048576 ? sprintf("%d MiB", b / 1048576) : \
         b >= 1024 ? sprintf("%d KiB", b / 1024) : sprintf("%d B", b)
set format y "%.0s%c"
set xlabel "payload (bytes; log scale)"
set ylabel "time per task (s; log scale)"
set grid
set key top left
plot in using 1:($2 / 1e9):xtic(lbl($1)) with linespoints lw 2 pt 7 title "sluice p50", \
     in using 1:($3 / 1e9) with linespoints lw 1 dt 2 pt 6 title "sluice p99", \
     in using 1:($4 / 1e9) with linespoints lw 2 pt 5 title "Unix stream sockets p50", \
     in using 1:($5 / 1e9) with linespoints lw 1 dt 2 pt 4 title "Unix stream sockets p99"
