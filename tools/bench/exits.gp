# The exit benchmark's plot, from the data files exit-bench -plot-dir writes.
# Usage: gnuplot -e "dir='DIR'" tools/bench/exits.gp   (writes DIR/exits.png)
if (!exists("dir")) dir = "."
set terminal png size 1500,480 font ",10"
set output dir."/exits.png"
set multiplot layout 1,3
# One colour per mode, in the column order of scaling.dat and delay.dat.
set linetype 1 lc rgb "#000000" lw 2 pt 7
set linetype 2 lc rgb "#d62728" lw 2 pt 5
set linetype 3 lc rgb "#1f77b4" lw 2 pt 9
set linetype 4 lc rgb "#2ca02c" lw 2 pt 11
set linetype 5 lc rgb "#9467bd" lw 2 pt 13
set linetype 6 lc rgb "#ff7f0e" lw 2 pt 4
set key top left
set grid
set ylabel "exits per second (all vCPUs)"
set xlabel "vCPUs"
set xtics 1
# ioeventfd is several times faster than any exit: a log scale keeps the rest apart
set logscale y
set title "PIO: scaling from 1 to N vCPUs"
plot for [c=2:7] dir."/scaling.dat" index 0 using 1:c with linespoints title columnheader(c)
set title "MMIO: scaling from 1 to N vCPUs"
plot for [c=2:7] dir."/scaling.dat" index 1 using 1:c with linespoints title columnheader(c)
set title "testdev delay-ns, all vCPUs, PIO (delay 0 drawn at 0.5)"
unset logscale y
set yrange [0:*]
set xlabel "delay-ns (us)"
set xtics auto
set logscale x 2
set xrange [0.5:*]
set y2label "BQL wait, % of vCPU time"
set y2range [0:100]
set y2tics
# delay 0 is drawn at 0.5 us so that the log scale keeps it
plot for [c=2:4] dir."/delay.dat" using ($1 < 0.5 ? 0.5 : $1):c with linespoints \
         lt c title columnheader(c), \
     dir."/delay.dat" using ($1 < 0.5 ? 0.5 : $1):5 axes x1y2 with impulses lw 8 lc rgb "#bbbbbb" \
         title "BQL wait % (lock=bql)"
unset multiplot
