#pragma once
// A training run's curves from its metrics.jsonl (train/metrics_file.hpp) as a small SVG: the
// validation metric (left axis, blue, a dot per evaluation) and the training curve (right axis,
// orange) against the step, each polyline scaled to its own range. It reads each stage's keys:
// base_train and mid_train write "val_bpb" and a smoothed "loss", chat_sft "val_loss" and a
// per-step "train_loss", chat_rl "pass@1".."pass@k" at evaluations and a per-step "reward";
// per-step values are smoothed as base_train smooths its loss (an EMA of 0.9, debiased) so the
// curves compare, and chat_rl's largest pass@k is drawn dashed beside pass@1. The report card
// draws every stage with it; `report plot` draws one file.

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/core/json.hpp"
#include "nanochat/tasks/dataset_files.hpp"

namespace nanochat {

namespace metrics_plot_detail {

constexpr double kWidth = 640, kHeight = 360, kPad = 56;
// Checked in this order; chat_rl also writes a per-step "loss" (its policy-gradient loss), so its
// "reward" comes first.
constexpr std::pair<std::string_view, std::string_view> kValidationKeys[] = {
    {"val_bpb", "val bpb"}, {"val_loss", "val loss"}, {"pass@1", "pass@1"}};
constexpr std::pair<std::string_view, std::string_view> kTrainKeys[] = {
    {"reward", "reward (EMA 0.9)"}, {"loss", "train loss"}, {"train_loss", "train loss (EMA 0.9)"}};

inline std::string fixed(double v, int places) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", places, v);
  return text;
}

inline std::string escape_xml(std::string_view text) {
  std::string out;
  for (char c : text) out += c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '"' ? "&quot;" : std::string(1, c);
  return out;
}

inline std::string polyline(const std::vector<std::pair<double, double>>& points, std::string_view color, bool dashed = false) {
  std::string out = cat("<polyline fill=\"none\" stroke=\"", color, "\" stroke-width=\"2\"", dashed ? " stroke-dasharray=\"6,4\"" : "",
                        " points=\"");
  for (std::size_t i = 0; i < points.size(); ++i) out += cat(i ? " " : "", fixed(points[i].first, 1), ",", fixed(points[i].second, 1));
  return out + "\"/>";
}

// Maps [min, max] of values onto [lo_px, hi_px] (a flat curve onto lo_px).
struct Scale {
  double lo, hi, lo_px, hi_px;
  Scale(const std::vector<double>& values, double lo_px_, double hi_px_)
      : lo(*std::min_element(values.begin(), values.end())), hi(*std::max_element(values.begin(), values.end())),
        lo_px(lo_px_), hi_px(hi_px_) {}
  double operator()(double v) const { return lo_px + (v - lo) / (hi - lo == 0 ? 1.0 : hi - lo) * (hi_px - lo_px); }
};

}  // namespace metrics_plot_detail

// The SVG text of the curves in `metrics` (see the top of this file); title: a line above the
// plot. A line that is not a JSON object with a numeric "step", or a file with no validation
// metric, is an Error naming the file (and the line).
inline std::string metrics_svg(const std::filesystem::path& metrics, std::string_view title = {}) {
  using namespace metrics_plot_detail;
  std::vector<json::Value> rows;
  tasks::for_each_jsonl(metrics, [&](const json::Value& row, const std::string& where) {
    NANOCHAT_CHECK(row.is_object() && row.find("step") != nullptr, where, ": not a metrics line (an object with a \"step\")");
    row.find("step")->number(where + ": \"step\"");
    rows.push_back(row);
  });
  const auto first_present = [&](const auto& keys) -> const std::pair<std::string_view, std::string_view>* {
    for (const auto& key : keys)
      for (const auto& r : rows)
        if (r.find(key.first) != nullptr) return &key;
    return nullptr;
  };
  const auto* val = first_present(kValidationKeys);
  NANOCHAT_CHECK(val != nullptr, metrics.string(), ": no val_bpb, val_loss or pass@1 lines to plot");
  const auto* train = first_present(kTrainKeys);
  const auto number = [&](const json::Value& r, std::string_view key) { return r.find(key)->number(cat(metrics.string(), ": ", key)); };

  std::vector<const json::Value*> evals, steps;
  for (const auto& r : rows) {
    if (r.find(val->first)) evals.push_back(&r);
    if (train && r.find(train->first)) steps.push_back(&r);
  }
  std::vector<double> train_values;
  for (const auto* r : steps) train_values.push_back(number(*r, train->first));
  if (train && train->first != "loss") {  // reward, train_loss: per-step values, smoothed as base_train's loss
    double ema = 0.0;
    for (std::size_t i = 0; i < train_values.size(); ++i) {
      ema = 0.9 * ema + 0.1 * train_values[i];
      train_values[i] = ema / (1.0 - std::pow(0.9, static_cast<double>(i + 1)));
    }
  }
  // chat_rl's widest pass@k, drawn dashed on pass@1's axis.
  int top_k = 1;
  for (const auto* r : evals)
    for (const auto& [key, value] : r->object("metrics line"))
      if (key.starts_with("pass@")) top_k = std::max(top_k, std::atoi(key.c_str() + 5));
  const std::string top_key = val->first == "pass@1" && top_k > 1 ? cat("pass@", top_k) : "";

  double last = 0;
  for (const auto* r : evals) last = std::max(last, number(*r, "step"));
  for (const auto* r : steps) last = std::max(last, number(*r, "step"));
  if (last == 0) last = 1;
  const auto x = [&](const json::Value& r) { return kPad + number(r, "step") / last * (kWidth - 2 * kPad); };
  std::vector<double> val_values;
  for (const auto* r : evals) val_values.push_back(number(*r, val->first));
  if (!top_key.empty())
    for (const auto* r : evals) val_values.push_back(r->find(top_key) ? number(*r, top_key) : number(*r, val->first));
  const Scale y_val(val_values, kHeight - kPad, kPad);
  const std::string val_label = cat(val->second, top_key.empty() ? "" : cat(" (solid), ", top_key, " (dashed)"));

  std::vector<std::string> parts = {
      cat("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", kWidth, "\" height=\"", kHeight,
          "\" font-family=\"sans-serif\" font-size=\"12\">"),
      cat("<rect width=\"", kWidth, "\" height=\"", kHeight, "\" fill=\"white\"/>")};
  if (!title.empty())
    parts.push_back(cat("<text x=\"", fixed(kWidth / 2, 1), "\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">", escape_xml(title), "</text>"));
  parts.push_back(cat("<line x1=\"", kPad, "\" y1=\"", kHeight - kPad, "\" x2=\"", kWidth - kPad, "\" y2=\"", kHeight - kPad, "\" stroke=\"black\"/>"));
  parts.push_back(cat("<line x1=\"", kPad, "\" y1=\"", kPad, "\" x2=\"", kPad, "\" y2=\"", kHeight - kPad, "\" stroke=\"black\"/>"));
  parts.push_back(cat("<text x=\"", fixed(kWidth / 2, 1), "\" y=\"", kHeight - 16, "\" text-anchor=\"middle\">step (0 to ",
                      static_cast<long long>(last), ")</text>"));
  parts.push_back(cat("<text x=\"", kPad, "\" y=\"", kPad - (top_key.empty() ? 10 : 26), "\" fill=\"#1f77b4\">", val_label, " ",
                      fixed(y_val.hi, 3), " (top) to ", fixed(y_val.lo, 3), "</text>"));
  std::vector<std::pair<double, double>> points;
  for (const auto* r : evals) points.emplace_back(x(*r), y_val(number(*r, val->first)));
  parts.push_back(polyline(points, "#1f77b4"));
  for (const auto& [px, py] : points)
    parts.push_back(cat("<circle cx=\"", fixed(px, 1), "\" cy=\"", fixed(py, 1), "\" r=\"3\" fill=\"#1f77b4\"/>"));
  if (!top_key.empty()) {
    std::vector<std::pair<double, double>> top;
    for (const auto* r : evals)
      if (r->find(top_key)) top.emplace_back(x(*r), y_val(number(*r, top_key)));
    parts.push_back(polyline(top, "#1f77b4", true));
  }
  if (!steps.empty()) {
    const Scale y_train(train_values, kHeight - kPad, kPad);
    std::vector<std::pair<double, double>> curve;
    for (std::size_t i = 0; i < steps.size(); ++i) curve.emplace_back(x(*steps[i]), y_train(train_values[i]));
    parts.push_back(polyline(curve, "#ff7f0e"));
    parts.push_back(cat("<text x=\"", kWidth - kPad, "\" y=\"", kPad - 10, "\" fill=\"#ff7f0e\" text-anchor=\"end\">", train->second,
                        " ", fixed(y_train.hi, 2), " (top) to ", fixed(y_train.lo, 2), "</text>"));
  }
  parts.push_back("</svg>");
  std::string svg;
  for (const auto& p : parts) svg += p + "\n";
  return svg;
}

}  // namespace nanochat
