#pragma once
// RFC 4180 CSV records (quoted fields, "" escapes, newlines inside quotes, CRLF or LF), the
// format of the MMLU release. A malformed record is an Error naming the file and record.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/core/error.hpp"

namespace nanochat::tasks {

// Calls on_record(fields, record_number) for each record (1-based; blank lines skipped).
template <class OnRecord>
void for_each_csv_record(std::string_view text, std::string_view source, OnRecord on_record) {
  std::vector<std::string> fields;
  std::string field;
  std::size_t record = 1;
  std::size_t i = 0;
  bool any = false;  // the record has content (a blank line is no record)
  const auto end_record = [&] {
    if (any) {
      fields.push_back(std::move(field));
      on_record(fields, record++);
    }
    fields.clear();
    field.clear();
    any = false;
  };
  while (i < text.size()) {
    const char c = text[i];
    if (c == '"' && field.empty()) {
      any = true;
      ++i;
      for (;;) {
        NANOCHAT_CHECK(i < text.size(), source, ": record ", record, ": a quoted field is not closed");
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field += text[i++];
      }
      NANOCHAT_CHECK(i == text.size() || text[i] == ',' || text[i] == '\n' || text[i] == '\r', source,
                     ": record ", record, ": text after a closing quote");
    } else if (c == ',') {
      any = true;
      fields.push_back(std::move(field));
      field.clear();
      ++i;
    } else if (c == '\n' || c == '\r') {
      end_record();
      i += (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ? 2 : 1;
    } else {
      any = true;
      field += c;
      ++i;
    }
  }
  end_record();
}

}  // namespace nanochat::tasks
