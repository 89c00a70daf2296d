package sensors

import (
	"math"

	"github.com/meshprotocol/mesh/node/api"
)

// rolling is a stream's recent behaviour: the exponentially weighted mean
// and variance of its readings, with weight alpha = 2/(window+1) for the
// newest (the span of an EWMA: about the last window readings count).
//
// A reading x is an anomaly when at least minSamples readings came before
// it and
//
//	|x − mean| > threshold × max(sd, 0.001 × |mean|, 1e-9)
//
// where mean and sd are the statistic before x is added (so a spike does
// not hide itself). The floor keeps a flat series (sd near 0) from marking
// every tiny change. Every reading, anomalous or not, then updates the
// statistic (West's incremental EW variance), so a lasting change of level
// stops being anomalous after about a window of readings.
type rolling struct {
	p     api.AnomalyOptions
	alpha float64
	n     int
	mean  float64
	vr    float64
}

func (r *rolling) init(p api.AnomalyOptions) { r.setParams(p) }

func (r *rolling) setParams(p api.AnomalyOptions) {
	if p.Window <= 0 {
		p.Window = DefaultAnomalyWindow
	}
	if p.Threshold <= 0 {
		p.Threshold = DefaultAnomalyThreshold
	}
	if p.MinSamples <= 0 {
		p.MinSamples = DefaultAnomalyMinSamples
	}
	r.p = p
	r.alpha = 2 / (float64(p.Window) + 1)
}

// score is how many (floored) standard deviations x lies from the mean,
// and whether that makes it an anomaly; 0 and false before minSamples.
func (r *rolling) score(x float64) (float64, bool) {
	if r.n < r.p.MinSamples {
		return 0, false
	}
	sd := math.Max(math.Sqrt(r.vr), math.Max(0.001*math.Abs(r.mean), 1e-9))
	z := math.Abs(x-r.mean) / sd
	return z, z > r.p.Threshold
}

// observe adds x to the statistic.
func (r *rolling) observe(x float64) {
	r.n++
	if r.n == 1 {
		r.mean, r.vr = x, 0
		return
	}
	d := x - r.mean
	incr := r.alpha * d
	r.mean += incr
	r.vr = (1 - r.alpha) * (r.vr + d*incr)
}
