//go:build linux

package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// writeChart draws the added ns per call of each configuration as
// horizontal bars, with the spread over rounds as a whisker.
func writeChart(path string, rep *report) error {
	var rows []row
	for _, r := range rep.rows {
		if !r.baseline {
			rows = append(rows, r)
		}
	}
	const (
		width  = 1000
		labelW = 340
		right  = 90
		top    = 50
		barH   = 22
		gap    = 14
		axisH  = 40
		charW  = 7
	)
	height := top + len(rows)*(barH+gap) + axisH
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)

	hi := 0.0
	for _, r := range rows {
		hi = max(hi, r.added, r.addedMax, r.addedCPU)
	}
	step := niceStep(hi / 6)
	hi = math.Ceil(hi/step) * step
	if hi <= 0 {
		hi, step = 1, 1
	}
	plotW := float64(width - labelW - right)
	x := func(v float64) int { return labelW + int(math.Round(max(v, 0)/hi*plotW)) }

	black := color.RGBA{0x20, 0x20, 0x20, 0xff}
	grid := color.RGBA{0xe0, 0xe0, 0xe0, 0xff}
	text(img, 10, 22, black, fmt.Sprintf("Added ns per mremap(2) call, and per getppid(2) call in the getppid rows (median over %d rounds; whiskers: min..max)", rep.b.opts.rounds))
	text(img, 10, 38, color.RGBA{0x60, 0x60, 0x60, 0xff}, fmt.Sprintf("baselines %.0f ns per mremap, %.0f per getppid; pinned to CPU %d; thin dark bar: the calling thread's own added CPU", baselineNs(rep, loadMremap), baselineNs(rep, loadGetppid), rep.b.opts.cpu))

	plotBottom := top + len(rows)*(barH+gap)
	for v := 0.0; v <= hi+step/2; v += step {
		gx := x(v)
		fill(img, image.Rect(gx, top-4, gx+1, plotBottom), grid)
		label := fmt.Sprintf("%.0f", v)
		text(img, gx-len(label)*charW/2, plotBottom+16, black, label)
	}
	text(img, labelW+int(plotW)/2-40, plotBottom+32, black, "ns per call")

	for i, r := range rows {
		y := top + i*(barH+gap)
		name := r.name
		if len(name)*charW > labelW-16 {
			name = name[:(labelW-16)/charW-3] + "..."
		}
		text(img, 10, y+barH/2+4, black, name)
		fill(img, image.Rect(labelW, y, x(r.added)+1, y+barH), barColor(r.key))
		// The loop's own CPU per call: a thin dark bar inside.
		fill(img, image.Rect(labelW, y+barH-6, x(r.addedCPU)+1, y+barH-2), color.RGBA{0x30, 0x30, 0x30, 0xff})
		// Whisker: min..max over rounds.
		wy := y + barH/2
		fill(img, image.Rect(x(r.addedMin), wy, x(r.addedMax)+1, wy+1), black)
		fill(img, image.Rect(x(r.addedMin), wy-5, x(r.addedMin)+1, wy+6), black)
		fill(img, image.Rect(x(r.addedMax), wy-5, x(r.addedMax)+1, wy+6), black)
		text(img, max(x(r.added), x(r.addedMax))+6, y+barH/2+4, black, fmt.Sprintf("%+.0f", r.added))
	}

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func baselineNs(rep *report, l load) float64 {
	if r, ok := rep.row(l.baselineKey()); ok {
		return r.nsPerCall
	}
	return 0
}

func barColor(key string) color.Color {
	switch {
	case key == "floor":
		return color.RGBA{0x9e, 0x9e, 0x9e, 0xff}
	case strings.HasPrefix(key, "bpftrace"):
		return color.RGBA{0xe6, 0x8a, 0x2e, 0xff}
	default:
		return color.RGBA{0x2e, 0x7d, 0xd1, 0xff}
	}
}

// niceStep rounds v up to 1, 2 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func fill(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r.Intersect(img.Bounds()), &image.Uniform{c}, image.Point{}, draw.Src)
}

func text(img *image.RGBA, x, y int, c color.Color, s string) {
	d := &font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}
