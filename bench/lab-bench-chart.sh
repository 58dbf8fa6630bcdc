#!/usr/bin/env bash
# Draws the lab bench's ratios (bench/lab-bench.sh writes them as TSV: mode, then tcp, udp, cps and lat, each as
# udr/kernel with the round trip turned over, so higher is better throughout) as a grouped bar chart with gnuplot.
#
#   bench/lab-bench-chart.sh TSV SVG SUBTITLE
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 TSV SVG SUBTITLE" >&2; exit 2; }
tsv=$1 svg=$2 subtitle=$3
command -v gnuplot >/dev/null || { echo "chart: gnuplot missing (./build.sh bench --lab installs it); only $tsv written" >&2; exit 0; }
gnuplot <<GNUPLOT
set terminal svg size 760,380 dynamic font "sans,12" background rgb "white"
set output "$svg"
set title "udr against the kernel's own forwarding path\n($subtitle)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set yrange [0:1.1<*]
set ylabel "udr / kernel (round trip: kernel / udr)"
set key outside right top vertical
set grid ytics
set arrow from graph 0, first 1 to graph 1, first 1 nohead dashtype 2 linecolor rgb "black"
plot "$tsv" skip 1 using 2:xtic(1) title "TCP upload" linecolor rgb "#4477aa", \
     "$tsv" skip 1 using 3 title "UDP 64 B delivered" linecolor rgb "#66ccee", \
     "$tsv" skip 1 using 4 title "TCP connections/s" linecolor rgb "#228833", \
     "$tsv" skip 1 using 5 title "UDP round trip" linecolor rgb "#ccbb44"
GNUPLOT
echo "chart: $svg (from $tsv)"
