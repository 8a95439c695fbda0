// Participation over time with uPlot (vendored): participants on the left axis, votes on the
// right. The page's table is the chart's twin; the chart itself is hidden from screen readers.
import uPlot from "../vendor/uplot/uPlot.esm.js";

function columns(series) {
  return [
    series.map((point) => point.computed_ms / 1000),
    series.map((point) => point.participants),
    series.map((point) => point.votes),
  ];
}

export function createChart(element, texts) {
  let plot = null;
  const size = () => ({ width: Math.max(240, element.clientWidth), height: 220 });
  const options = () => ({
    ...size(),
    legend: { show: true },
    // One point (the first result) would make uPlot span years: show a few minutes around it.
    scales: { x: { time: true, range: (_, min, max) => (min === max ? [min - 300, max + 300] : [min, max]) }, votes: {} },
    axes: [
      { label: texts.time_axis },
      { label: texts.participants_axis },
      { label: texts.votes_axis, scale: "votes", side: 1, grid: { show: false } },
    ],
    series: [
      {},
      { label: texts.participants_axis, stroke: "#0072B2", width: 2 },
      { label: texts.votes_axis, stroke: "#D55E00", width: 2, dash: [6, 4], scale: "votes" },
    ],
  });
  window.addEventListener("resize", () => plot && plot.setSize(size()));
  return {
    update(series) {
      const data = columns(series);
      if (plot) plot.setData(data);
      else plot = new uPlot(options(), data, element);
    },
  };
}
