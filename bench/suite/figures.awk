# sluice-bench's summary: joins the comparisons of figures.txt (the first
# file) with the figures the benches wrote (the other files, "key<TAB>value
# <TAB>unit" lines) and writes the summary three ways:
#   txt=FILE   the terminal table (per suite, each sluice figure on a line,
#              its baselines under it with sluice/baseline and a verdict)
#   md=FILE    the same as Markdown tables
#   json=FILE  a JSON array of figure objects (docs/schema/bench.schema.json,
#              "figures")
# POSIX awk; no single quotes in this file (the driver may inline it).
BEGIN { FS = "|"; nrow = 0; nsuite = 0 }

# ---- figures.txt ------------------------------------------------------------
FNR == NR {
	if ($0 ~ /^#/ || $0 ~ /^[ \t]*$/)
		next
	if ($0 ~ /^@/) {
		s = substr($1, 2)
		title[s] = $2
		if (!(s in seen_suite)) { seen_suite[s] = 1; order[++nsuite] = s }
		next
	}
	if (!($1 in seen_suite)) { seen_suite[$1] = 1; order[++nsuite] = $1; title[$1] = $1 }
	if (NF >= 8 && $8 != "") {
		n = split($8, list, " ")
		for (i = 1; i <= n; i++)
			add_row(list[i])
	} else {
		add_row("")
	}
	next
}

# ---- the benches' figures ----------------------------------------------------
{
	split($0, f, "\t")
	if (f[1] != "") { val[f[1]] = f[2] + 0; unitof[f[1]] = f[3]; keys[++nkeys] = f[1] }
}

function size_name(n) {
	if (n >= 1048576) return (n / 1048576) " MiB"
	if (n >= 1024) return (n / 1024) " KiB"
	return n " B"
}

function subst(s, n,    out) {
	out = s
	gsub(/%N%/, n, out)
	gsub(/%S%/, size_name(n + 0), out)
	return out
}

function add_row(n) {
	nrow++
	r_suite[nrow] = $1
	has_rows[$1] = 1
	r_fig[nrow] = subst($2, n)
	sub(/p999/, "p99.9", r_fig[nrow])
	r_unit[nrow] = $3
	r_better[nrow] = $4
	r_skey[nrow] = subst($5, n)
	r_base[nrow] = subst($6, n)
	r_bkey[nrow] = subst($7, n)
}

# ---- formatting ------------------------------------------------------------------
# scale(v, unit) sets DIV and SUF, the divisor and suffix v is shown with.
function scale(v, unit) {
	DIV = 1; SUF = " " unit
	if (unit == "ns") {
		if (v >= 1e10) { DIV = 1e9; SUF = " s" }
		else if (v >= 1e7) { DIV = 1e6; SUF = " ms" }
		else if (v >= 1e4) { DIV = 1e3; SUF = " us" }
	} else if (unit == "/s") {
		if (v >= 1e6) { DIV = 1e6; SUF = " M/s" }
		else if (v >= 1e4) { DIV = 1e3; SUF = " k/s" }
	} else if (unit == "KiB") {
		if (v >= 10240) { DIV = 1024; SUF = " MiB" }
	} else if (unit == "%") {
		SUF = "%"
	} else if (unit == "x") {
		SUF = "x"
	}
}

function num(x) {
	if (x == int(x) && x < 1e6) return sprintf("%d", x)
	if (x >= 100) return sprintf("%.0f", x)
	if (x >= 10) return sprintf("%.1f", x)
	if (x >= 0.01) return sprintf("%.2f", x)
	return sprintf("%.2g", x)
}

function fmt(v, unit) {
	scale(v, unit)
	return num(v / DIV) SUF
}

# The spread of a median figure: its min and max, in the median scale.
function spread(key, v, unit,    k1, k2) {
	if (key !~ /median$/) return ""
	k1 = key; sub(/median$/, "min", k1)
	k2 = key; sub(/median$/, "max", k2)
	if (!(k1 in val) || !(k2 in val)) return ""
	scale(v, unit)
	return " (" num(val[k1] / DIV) "-" num(val[k2] / DIV) ")"
}

function ratio_str(r) {
	if (r >= 100) return sprintf("%.0f", r)
	if (r >= 10) return sprintf("%.1f", r)
	if (r >= 0.01) return sprintf("%.2f", r)
	return sprintf("%.2g", r)
}

function jstr(s) {
	gsub(/\\/, "\\\\", s)
	gsub(/"/, "\\\"", s)
	return "\"" s "\""
}

function jnum(x, ok) {
	return ok ? sprintf("%.10g", x) : "null"
}

function pad(s, w) {
	while (length(s) < w) s = s " "
	return s
}

function lpad(s, w) {
	while (length(s) < w) s = " " s
	return s
}

# ---- the summary --------------------------------------------------------------------
END {
	# Rows go out grouped by figure (suite, name, sluice key), the groups
	# in the order they first appear, so that an N list expanded over
	# several lines shows each figure once with all its baselines.
	ng = 0
	for (i = 1; i <= nrow; i++) {
		gk = r_suite[i] SUBSEP r_fig[i] SUBSEP r_skey[i]
		if (!(gk in group)) group[gk] = ++ng
		grp[i] = group[gk]
	}
	nsorted = 0
	for (g = 1; g <= ng; g++)
		for (i = 1; i <= nrow; i++)
			if (grp[i] == g) sorted[++nsorted] = i
	nj = 0
	if (json != "") printf "[" > json
	for (si = 1; si <= nsuite; si++) {
		s = order[si]
		shown = 0
		for (ii = 1; ii <= nsorted; ii++) {
			i = sorted[ii]
			if (r_suite[i] != s || !(r_skey[i] in val)) continue
			if (!shown) {
				if (txt != "") printf "\n%s\n", title[s] > txt
				if (md != "") {
					printf "\n**%s**\n\n", title[s] > md
					printf "| figure | sluice | baseline | baseline value | sluice / baseline | |\n" > md
					printf "|---|---:|---|---:|---:|---|\n" > md
				}
				shown = 1
				last = ""
			}
			sk = r_skey[i]; sv = val[sk]; u = r_unit[i]
			sval = fmt(sv, u) spread(sk, sv, u)
			goal = r_bkey[i] ~ /^=/
			hasb = 0; bspr = ""
			if (goal) { bv = substr(r_bkey[i], 2) + 0; hasb = 1 }
			else if (r_bkey[i] in val) { bv = val[r_bkey[i]]; hasb = 1; bspr = spread(r_bkey[i], bv, u) }
			low = r_better[i] == "low"
			hasr = hasb && bv > 0
			ratio = hasr ? sv / bv : 0
			if (!hasb) verdict = "baseline not measured"
			else if (goal) verdict = (low ? sv <= bv : sv >= bv) ? "goal met" : "goal missed"
			else if (bv == 0 || sv == 0) verdict = sv == bv ? "same" : ((low ? sv < bv : sv > bv) ? "better" : "worse")
			else {
				fac = low ? bv / sv : sv / bv
				if (fac >= 1.005) verdict = ratio_str(fac) "x better"
				else if (fac <= 0.995) verdict = ratio_str(1 / fac) "x worse"
				else verdict = "same"
			}
			bname = goal ? "goal: " (low ? "at most " : "at least ") fmt(bv, u) : r_base[i]
			bval = !hasb ? "-" : goal ? "" : fmt(bv, u) bspr
			rstr = hasr ? ratio_str(ratio) : "-"
			head = r_fig[i] SUBSEP sval
			if (txt != "") {
				if (head != last) printf "  %s: %s\n", r_fig[i], sval > txt
				printf "      %s %s %s  %s\n", pad(bname, 40), lpad(bval, 22), lpad(rstr, 7), verdict > txt
			}
			if (md != "") {
				if (head != last) printf "| %s | %s ", r_fig[i], sval > md
				else printf "| | " > md
				printf "| %s | %s | %s | %s |\n", bname, bval, rstr, verdict > md
			}
			last = head
			if (json != "") {
				printf "%s\n  {\"suite\": %s, \"figure\": %s, \"unit\": %s, \"better\": %s, ", (nj++ ? "," : ""), jstr(s), jstr(r_fig[i]), jstr(u), jstr(low ? "lower" : "higher") > json
				printf "\"sluice_key\": %s, \"sluice\": %s, ", jstr(sk), jnum(sv, 1) > json
				printf "\"baseline\": %s, \"baseline_key\": %s, \"baseline_value\": %s, \"goal\": %s, ", jstr(goal ? "goal" : r_base[i]), goal ? "null" : jstr(r_bkey[i]), jnum(bv, hasb), goal ? "true" : "false" > json
				printf "\"ratio\": %s, \"verdict\": %s}", jnum(ratio, hasr), jstr(verdict) > json
			}
		}
		# The figures of a suite that no comparison names (an external
		# script's, such as scripts/bench_http.sh, keys "SUITE.*"):
		# listed as they are.
		for (k = 1; k <= nkeys && !(s in has_rows); k++) {
			key = keys[k]
			if (index(key, s ".") != 1 || (key in named)) continue
			if (!listed_any[s]++) {
				if (txt != "") printf "\n%s\n", title[s] > txt
				if (md != "") printf "\n**%s**\n\n| figure | value |\n|---|---:|\n", title[s] > md
			}
			named[key] = 1
			if (txt != "") printf "  %s: %s\n", key, fmt(val[key], unitof[key]) > txt
			if (md != "") printf "| %s | %s |\n", key, fmt(val[key], unitof[key]) > md
		}
	}
	if (json != "") printf "%s]\n", (nj ? "\n" : "") > json
}
