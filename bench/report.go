package bench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteJSON writes the whole report, indented.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// multiISA reports whether the results span more than one kernel path, in which case
// the backend column names the path.
func (r *Report) multiISA() bool {
	for _, x := range r.Results {
		if x.ISA != r.Results[0].ISA {
			return true
		}
	}
	return false
}

func (r *Report) backend(x Result) string {
	if r.multiISA() {
		return x.Backend + " (" + x.ISA + ")"
	}
	return x.Backend
}

// hasExpertBits reports whether some result ran MWQ experts, in which case the table
// gets an "expert bits" column (as llama-bench adds a column for a parameter it varies).
func (r *Report) hasExpertBits() bool {
	for _, x := range r.Results {
		if x.ExpertBits > 0 {
			return true
		}
	}
	return false
}

// WriteMarkdown writes llama-bench's table (model | size | params | backend | threads |
// test | t/s) with mole's columns after it, preceded by the CPU line and followed by
// the roofline each thread count was measured at. Runs of MWQ models add an "expert
// bits" column after threads ("-" for models without MWQ experts).
func (r *Report) WriteMarkdown(w io.Writer) error {
	isa := r.ISA
	if len(r.Results) > 0 && !r.multiISA() {
		isa = r.Results[0].ISA
	}
	fmt.Fprintf(w, "CPU: %s (%d CPUs, %s/%s), kernels %s, %s, commit %s\n\n", r.CPU, r.Cores, r.OS, r.Arch, isa, r.GoVersion, r.Commit)
	bitsHead, bitsRule := "", ""
	if r.hasExpertBits() {
		bitsHead, bitsRule = " expert bits |", " ----------: |"
	}
	fmt.Fprintln(w, "| model | size | params | backend | threads |"+bitsHead+" test | t/s | bytes/token | GB/s | % roofline | peak RSS |")
	fmt.Fprintln(w, "| ----- | ---: | -----: | ------- | ------: |"+bitsRule+" ---: | --: | ----------: | ---: | ---------: | -------: |")
	for _, x := range r.Results {
		bits := ""
		switch {
		case bitsHead == "":
		case x.ExpertBits > 0:
			bits = fmt.Sprintf(" %d |", x.ExpertBits)
		default:
			bits = " - |"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %d |%s %s | %.2f ± %.2f | %s | %.2f | %.1f (%s) | %s |\n",
			x.ModelType, gib(x.ModelSize), paramsLabel(x.Params), r.backend(x), x.Threads, bits, x.Test,
			x.AvgTs, x.StddevTs, mib(x.BytesToken), x.GBs, x.RoofPct, roofShort(x.RoofKind), gib(x.PeakRSS))
	}
	fmt.Fprintln(w)
	for _, ro := range r.Roofline {
		fmt.Fprintf(w, "roofline %s, %d threads: read %.1f GB/s, int8 peak %.1f GMAC/s, float32 peak %.1f GFLOP/s (Q8_0 GEMM achieves %.1f GMAC/s)\n",
			ro.ISA, ro.Threads, ro.ReadGBs, ro.PeakGMACs, ro.PeakGFLOPs, ro.GemmGMACs)
	}
	_, err := fmt.Fprintf(w, "%% roofline: tg against read bandwidth / bytes per token (bw); pp against the compute peaks (compute), "+
		"1 / (int8 MACs per token / int8 peak + 2 x float MACs per token / float32 peak), with F32/F16/BF16 matrices counted as float. "+
		"The peaks are register-only loops of the kernel path's multiply instructions (VPDPBUSD, VPMADDUBSW+VPMADDWD, SDOT or SMULL; VFMADD231PS or FMLA).\n")
	return err
}

func roofShort(kind string) string {
	if kind == "bandwidth" {
		return "bw"
	}
	return kind
}

func gib(n int64) string { return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30)) }
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// paramsLabel prints a parameter count as llama-bench does: "6.92 B", "644.12 M".
func paramsLabel(n int64) string {
	if n >= 1e9 {
		return fmt.Sprintf("%.2f B", float64(n)/1e9)
	}
	return fmt.Sprintf("%.2f M", float64(n)/1e6)
}

// csvColumns are the CSV header; each is a JSON field of Result (traffic is flattened).
var csvColumns = []string{
	"build_commit", "cpu_info", "go_version", "model_filename", "model_type", "model_size", "model_n_params",
	"model_n_params_active", "backends", "isa", "n_threads", "expert_bits", "test", "n_prompt", "n_gen", "pp_mode", "repetitions",
	"avg_ns", "stddev_ns", "avg_ts", "stddev_ts", "bytes_per_token", "macs_per_token", "gb_s", "roofline_ts",
	"roofline_by", "roofline_pct", "read_gb_s", "peak_gmac_s", "peak_gflop_s", "peak_rss_bytes", "samples_ns", "samples_ts",
}

// WriteCSV writes one line per result with the environment repeated on each, as
// llama-bench's CSV does, so lines from several runs can be concatenated.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write(csvColumns)
	for _, x := range r.Results {
		i := func(v int64) string { return strconv.FormatInt(v, 10) }
		f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
		var ns, ts []string
		for k := range x.SamplesNs {
			ns = append(ns, i(x.SamplesNs[k]))
			ts = append(ts, f(x.SamplesTs[k]))
		}
		cw.Write([]string{
			r.Commit, r.CPU, r.GoVersion, x.Model, x.ModelType, i(x.ModelSize), i(x.Params),
			i(x.ActiveParams), x.Backend, x.ISA, strconv.Itoa(x.Threads), strconv.Itoa(x.ExpertBits), x.Test, strconv.Itoa(x.NPrompt), strconv.Itoa(x.NGen),
			x.PPMode, strconv.Itoa(x.Reps), i(x.AvgNs), i(x.StddevNs), f(x.AvgTs), f(x.StddevTs), i(x.BytesToken),
			i(x.MACsToken), f(x.GBs), f(x.RoofTs), x.RoofKind, f(x.RoofPct), f(x.ReadGBs), f(x.PeakGMACs), f(x.PeakGFLOPs), i(x.PeakRSS),
			strings.Join(ns, ";"), strings.Join(ts, ";"),
		})
	}
	cw.Flush()
	return cw.Error()
}
