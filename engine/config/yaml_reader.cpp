#include "engine/config/yaml_reader.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "engine/util/text.h"

namespace courier::config {

std::optional<std::string> expand_variables(std::string_view text, std::string& error) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t start = text.find("${", i);
    if (start == std::string_view::npos) {
      out.append(text.substr(i));
      break;
    }
    out.append(text.substr(i, start - i));
    // The matching '}', allowing ${VAR:-${OTHER}} in defaults.
    std::size_t end = start + 2;
    for (int depth = 1; end < text.size(); ++end) {
      if (text.compare(end, 2, "${") == 0) {
        ++depth;
        ++end;
      } else if (text[end] == '}' && --depth == 0) {
        break;
      }
    }
    if (end >= text.size()) {
      error = "unterminated ${ in '" + std::string(text) + "'";
      return std::nullopt;
    }
    const std::string_view body = text.substr(start + 2, end - start - 2);
    const std::size_t dash = body.find(":-");
    const std::string name(body.substr(0, dash));
    const char* value = std::getenv(name.c_str());
    if (value != nullptr && *value != '\0') {
      out += value;
    } else if (dash != std::string_view::npos) {
      auto fallback = expand_variables(body.substr(dash + 2), error);
      if (!fallback) return std::nullopt;
      out += *fallback;
    } else {
      error =
          "environment variable " + name + " is not set and has no default (write ${" + name + ":-default})";
      return std::nullopt;
    }
    i = end + 1;
  }
  return out;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::int64_t number = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc() || end == text.data() || number < 0) return std::nullopt;
  const std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  std::int64_t scale = 0;
  if (unit == "ms") {
    scale = 1;
  } else if (unit.empty() || unit == "s") {
    scale = 1000;
  } else if (unit == "m") {
    scale = 60'000;
  } else if (unit == "h") {
    scale = 3'600'000;
  } else if (unit == "d") {
    scale = 86'400'000;
  } else {
    return std::nullopt;
  }
  if (number > INT64_MAX / scale) return std::nullopt;
  return std::chrono::milliseconds(number * scale);
}

bool YamlReader::load(YAML::Node& root) {
  std::ifstream file(path_, std::ios::binary);
  if (!file) {
    errors_.push_back(path_ + ": cannot read the file");
    return false;
  }
  std::ostringstream text;
  text << file.rdbuf();
  std::istringstream lines(text.str());
  for (std::string line; std::getline(lines, line);) {
    if (line.ends_with('\r')) line.pop_back();
    lines_.push_back(std::move(line));
  }
  try {
    root = YAML::Load(text.str());
    return true;
  } catch (const YAML::ParserException& e) {
    errors_.push_back(path_ + ":" + std::to_string(e.mark.line + 1) + ":" +
                      std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  return false;
}

bool YamlReader::fail(const YAML::Node& node, const std::string& message) {
  const YAML::Mark mark = node.Mark();
  if (mark.is_null()) {
    errors_.push_back(path_ + ": " + message);
  } else {
    errors_.push_back(path_ + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1) +
                      ": " + message);
  }
  return false;
}

bool YamlReader::check_keys(const YAML::Node& map, std::initializer_list<std::string_view> known,
                            const std::string& where) {
  if (!map.IsMap()) return fail(map, where + " must be a mapping");
  bool ok = true;
  for (const auto& item : map) {
    const std::string key = item.first.as<std::string>();
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string message = "unknown key '" + key + "' in " + where;
    const std::string near = util::closest(key, std::span(known.begin(), known.size()));
    if (!near.empty()) message += "; did you mean '" + near + "'?";
    ok = fail(item.first, message);
  }
  return ok;
}

std::optional<std::string> YamlReader::scalar(const YAML::Node& node, const std::string& field) {
  if (!node.IsScalar()) {
    fail(node, field + " must be a single value");
    return std::nullopt;
  }
  std::string expand_error;
  auto value = expand_variables(node.Scalar(), expand_error);
  if (!value) fail(node, field + ": " + expand_error);
  return value;
}

std::optional<std::chrono::milliseconds> YamlReader::duration(const YAML::Node& node,
                                                              const std::string& field) {
  const auto text = scalar(node, field);
  if (!text) return std::nullopt;
  auto value = parse_duration(*text);
  if (!value) fail(node, field + " must be a duration such as 500ms, 30s, 5m or 1h, not '" + *text + "'");
  return value;
}

std::optional<std::int64_t> YamlReader::integer(const YAML::Node& node, const std::string& field,
                                                std::int64_t min, std::int64_t max) {
  const auto text = scalar(node, field);
  if (!text) return std::nullopt;
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size() || value < min || value > max) {
    fail(node, field + " must be a whole number from " + std::to_string(min) + " to " + std::to_string(max) +
                   ", not '" + *text + "'");
    return std::nullopt;
  }
  return value;
}

std::optional<std::int64_t> YamlReader::size(const YAML::Node& node, const std::string& field) {
  const auto text = scalar(node, field);
  if (!text) return std::nullopt;
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  const std::string_view unit(end, static_cast<std::size_t>(text->data() + text->size() - end));
  int shift = -1;
  if (unit.empty() || unit == "B") shift = 0;
  if (unit == "KiB" || unit == "KB" || unit == "K") shift = 10;
  if (unit == "MiB" || unit == "MB" || unit == "M") shift = 20;
  if (unit == "GiB" || unit == "GB" || unit == "G") shift = 30;
  if (ec != std::errc() || end == text->data() || value <= 0 || shift < 0 || value > (INT64_MAX >> 31)) {
    fail(node, field + " must be a size such as 65536, 512KiB or 16MiB, not '" + *text + "'");
    return std::nullopt;
  }
  return value << shift;
}

std::optional<bool> YamlReader::boolean(const YAML::Node& node, const std::string& field) {
  const auto text = scalar(node, field);
  if (!text) return std::nullopt;
  if (*text == "true") return true;
  if (*text == "false") return false;
  fail(node, field + " must be true or false, not '" + *text + "'");
  return std::nullopt;
}

std::optional<std::string> YamlReader::choice(const YAML::Node& node, const std::string& field,
                                              std::initializer_list<std::string_view> choices) {
  auto text = scalar(node, field);
  if (!text) return std::nullopt;
  if (std::find(choices.begin(), choices.end(), *text) != choices.end()) return text;
  std::string message = field + " must be one of";
  for (const std::string_view c : choices) message += std::string(c == *choices.begin() ? " " : ", ") += c;
  message += ", not '" + *text + "'";
  const std::string near = util::closest(*text, std::span(choices.begin(), choices.size()));
  if (!near.empty()) message += "; did you mean '" + near + "'?";
  fail(node, message);
  return std::nullopt;
}

bool YamlReader::fail_in_scalar(const YAML::Node& node, std::size_t offset, const std::string& message) {
  const YAML::Mark mark = node.Mark();
  if (mark.is_null() || static_cast<std::size_t>(mark.line) >= lines_.size()) return fail(node, message);
  std::size_t line = static_cast<std::size_t>(mark.line);
  std::size_t column = static_cast<std::size_t>(mark.column) + offset;
  const std::string& first = lines_[line];
  const char start = static_cast<std::size_t>(mark.column) < first.size() ? first[mark.column] : '\0';
  if (start == '"' || start == '\'') {
    ++column;
  } else if (start == '|' || start == '>') {
    // A block scalar's text starts on the next line, indented as its first
    // line is; its lines are joined by one character (a space or a newline).
    std::size_t indent = std::string::npos;
    std::size_t remaining = offset;
    for (++line; line < lines_.size(); ++line) {
      const std::string& text = lines_[line];
      if (indent == std::string::npos) indent = text.find_first_not_of(' ');
      const std::size_t length = text.size() > indent ? text.size() - indent : 0;
      if (remaining <= length) break;
      remaining -= length + 1;
    }
    column = (indent == std::string::npos ? 0 : indent) + remaining;
  }
  errors_.push_back(path_ + ":" + std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " +
                    message);
  return false;
}

}  // namespace courier::config
