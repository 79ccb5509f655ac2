# The exit benchmark's plot, from the data files exit-bench -plot-dir writes.
# Usage: gnuplot -e "dir='DIR'" tools/bench/exits.gp   (writes DIR/exits.png)
if (!exists("dir")) dir = "."
set terminal png size 1500,480 font ",10"
set output dir."/exits.png"
set multiplot layout 1,3
set key top left
set grid
set ylabel "exits per second (all vCPUs)"
set xlabel "vCPUs"
set xtics 1
set yrange [0:*]
set title "PIO: scaling from 1 to N vCPUs"
plot for [c=2:7] dir."/scaling.dat" index 0 using 1:c with linespoints title columnheader(c)
set title "MMIO: scaling from 1 to N vCPUs"
plot for [c=2:7] dir."/scaling.dat" index 1 using 1:c with linespoints title columnheader(c)
set title "testdev delay-ns sweep, all vCPUs, PIO"
set xlabel "delay-ns (us)"
set xtics auto
set logscale x 2
set xrange [0.5:*]
set y2label "BQL wait, % of vCPU time"
set y2range [0:100]
set y2tics
# delay 0 is drawn at 0.5 us so that the log scale keeps it
plot for [c=2:4] dir."/delay.dat" using ($1 < 0.5 ? 0.5 : $1):c with linespoints \
         title columnheader(c), \
     dir."/delay.dat" using ($1 < 0.5 ? 0.5 : $1):5 axes x1y2 with impulses lw 6 \
         title "BQL wait % (lock=bql)"
unset multiplot
