# Plots hetcache_io_latency_bench --csv output: requests/s (left) and p99 ms (right) against the
# number of clients, one row per added round trip, one line per mode.
#   gnuplot -e "csv='io-latency.csv'; png='io-latency.png'" bench/io_latency_plot.gp
set datafile separator ","
set terminal pngcairo size 1400,1200 font ",10" noenhanced
set output png
set key top left
set logscale x 2
set grid
modes = "fibers tbb sequential hybrid adaptive"
rtts = "0 0.5 2"
# One mode's server rows at one round trip (a gap between a line's points would break it).
rows(rtt, mode) = sprintf("< awk -F, '$1 == \"server\" && $2 == \"%s\" && $4 == \"%s\"' %s", \
                          rtt, mode, csv)
set multiplot layout 3,2 \
    title "Redis behind the latency proxy: get_or_compute of 1-10 keys per request"
do for [r = 1:3] {
  rtt = word(rtts, r)
  set title sprintf("+%s ms round trip: throughput", rtt)
  set xlabel "concurrent clients"
  set ylabel "requests/s"
  set logscale y
  plot for [m = 1:5] rows(rtt, word(modes, m)) using 3:5 with linespoints title word(modes, m)
  set title sprintf("+%s ms round trip: p99 latency", rtt)
  set ylabel "p99 ms"
  plot for [m = 1:5] rows(rtt, word(modes, m)) using 3:7 with linespoints title word(modes, m)
  unset logscale y
}
unset multiplot
