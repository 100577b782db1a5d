# The bar chart of compare.sh: median wall time per image and contender, min–max bars.
# gnuplot -e "data='chart.dat'; out='latest.png'; stamp='…'" chart.gp
set terminal pngcairo size 1100,600 font "DejaVu Sans,11"
set output out
set title "Importing a 4 GiB golden image from a local registry (lower is better)\n{/*0.8 ".stamp."}"
set ylabel "wall time, seconds"
set style data histogram
set style histogram errorbars gap 1.5 lw 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key outside bottom center horizontal
set grid ytics
set yrange [0:*]
set xtics nomirror
set datafile missing "-"
plot data using 2:3:4:xtic(1) title "(1) bootsource import" lc rgb "#1b9e77", \
     ''   using 5:6:7 title "(2) CDI-style: skopeo + extract + qemu-img" lc rgb "#d95f02", \
     ''   using 8:9:10 title "(3) qemu-img convert, local file" lc rgb "#7570b3", \
     ''   using 11:12:13 title "(4) limit: decompress layer" lc rgb "#999999"
