//! `throughput.svg`: a bar chart drawn without dependencies.

use std::fmt::Write as _;

use super::{Results, Section, Tool, medians};

/// Horizontal bars: wrk and h2load req/s per proxy path.
pub(super) fn svg(results: &Results, proxies: &[String]) -> String {
    let rows: Vec<(String, f64, f64)> = proxies
        .iter()
        .map(|name| {
            let w = medians(results, Section::Proxies, name, Tool::Wrk);
            let h = medians(results, Section::Proxies, name, Tool::H2load);
            (name.clone(), w.rps.unwrap_or(0.0), h.rps.unwrap_or(0.0))
        })
        .collect();
    let max = rows
        .iter()
        .flat_map(|(_, w, h)| [*w, *h])
        .fold(1.0_f64, f64::max);
    let (label_w, bar_w, row_h, top) = (150.0, 460.0, 44.0, 50.0);
    let height = top + row_h * rows.len() as f64 + 30.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">Requests/s, median \
         (higher is better; one shared, busy machine)</text>\n\
         <rect x=\"{label_w}\" y=\"30\" width=\"10\" height=\"10\" fill=\"#4e79a7\"/>\
         <text x=\"{}\" y=\"39\">wrk HTTP/1.1</text>\n\
         <rect x=\"{}\" y=\"30\" width=\"10\" height=\"10\" fill=\"#f28e2b\"/>\
         <text x=\"{}\" y=\"39\">h2load h2c</text>\n",
        label_w + 14.0,
        label_w + 110.0,
        label_w + 124.0
    );
    for (i, (name, wrk, h2)) in rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            label_w - 8.0,
            y + 20.0,
            escape(name)
        );
        for (j, (value, color)) in [(*wrk, "#4e79a7"), (*h2, "#f28e2b")].iter().enumerate() {
            let by = y + 4.0 + 18.0 * j as f64;
            let w = bar_w * value / max;
            let _ = writeln!(
                out,
                "<rect x=\"{label_w}\" y=\"{by}\" width=\"{w:.1}\" height=\"16\" fill=\"{color}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\">{value:.0}</text>",
                label_w + w + 4.0,
                by + 12.0
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
