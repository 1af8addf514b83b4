#pragma once
// Offline word tasks over a built-in list of common English words (no download, no word list
// installed): letter counting through the calculator, as SpellingBee does
// ('strawberry'.count('r') -> 3, then "#### 3"), and spelling ("Spell the word: cat" ->
// "cat:c,a,t"). Held-out problems are (word, letter) pairs and words respectively.
//
// Spelling also draws invented words ("bakotu"). A held-out word's spelling can only be
// composed from the letters of its tokens, and a model that sees the same 150 words spelt over
// and over memorises them instead: the d4 main job answered a held-out "garden" with the
// spelling of "lion" (0 of 200). Made-up words never repeat, so the model must learn each
// token's letters, which is what spelling an unseen word takes.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "nanochat/tasks/answer.hpp"
#include "nanochat/tasks/gsm8k.hpp"
#include "nanochat/tasks/held_out_split.hpp"
#include "nanochat/tasks/spelling_bee.hpp"
#include "nanochat/tasks/task.hpp"

namespace nanochat::tasks {

inline constexpr std::array<std::string_view, 160> kOfflineWords = {
    "apple", "banana", "cherry", "strawberry", "orange", "grape", "lemon", "melon", "peach", "pear",
    "plum", "mango", "kiwi", "cat", "dog", "horse", "rabbit", "mouse", "tiger", "lion",
    "zebra", "giraffe", "monkey", "elephant", "turtle", "dolphin", "whale", "shark", "eagle", "parrot",
    "house", "garden", "window", "door", "kitchen", "bedroom", "table", "chair", "pillow", "blanket",
    "river", "mountain", "forest", "desert", "ocean", "island", "valley", "meadow", "canyon", "volcano",
    "red", "green", "blue", "yellow", "purple", "silver", "golden", "black", "white", "brown",
    "happy", "sad", "bright", "quiet", "loud", "gentle", "brave", "clever", "funny", "honest",
    "run", "jump", "swim", "sing", "dance", "write", "read", "think", "listen", "travel",
    "book", "pencil", "paper", "letter", "number", "school", "teacher", "student", "lesson", "library",
    "computer", "keyboard", "screen", "program", "language", "model", "token", "python", "script", "memory",
    "summer", "winter", "spring", "autumn", "morning", "evening", "midnight", "sunrise", "sunset", "weather",
    "bread", "butter", "cheese", "coffee", "cookie", "honey", "pepper", "salad", "soup", "sugar",
    "bottle", "basket", "bucket", "button", "candle", "mirror", "needle", "pocket", "ribbon", "rocket",
    "planet", "galaxy", "comet", "moon", "star", "cloud", "thunder", "rainbow", "snow", "storm",
    "friend", "family", "mother", "father", "sister", "brother", "baby", "people", "village", "city",
    "mississippi", "bookworm", "committee", "balloon", "toffee", "bookkeeper", "success", "address", "assessment", "possession",
};

class OfflineLetterCount final : public Task {
 public:
  struct Options {
    std::uint64_t seed = 0;
    std::size_t size = 1000;
    Split split = Split::train;
    HeldOut held_out{};
  };

  explicit OfflineLetterCount(Options options) : options_(options) {}

  std::string name() const override { return cat("OfflineLetterCount(", name_of(options_.split), ")"); }
  std::size_t size() const override { return options_.size; }
  Example example(std::size_t index) const override {
    check_index(index);
    PythonRandom rng = example_rng(options_.seed, "letter_count", index);
    const Problem p = draw_in_split<Problem>(
        rng, options_.held_out, options_.split, name(),
        [](PythonRandom& r) {
          const std::string_view word = r.choice(kOfflineWords);
          const char letter = r.random() < 0.8 ? r.choice(word) : r.choice(spelling_detail::kLetters);
          return Problem{word, letter};
        },
        [](const Problem& q) { return q.key(); });
    std::size_t count = 0;
    for (char c : p.word) count += c == p.letter;
    Example out;
    out.conversation.messages.push_back({"user", cat("How many '", p.letter, "' are in '", p.word, "'?")});
    out.conversation.messages.push_back(
        {"assistant", std::vector<MessagePart>{{"python", cat("'", p.word, "'.count('", p.letter, "')")},
                                               {"python_output", std::to_string(count)},
                                               {"text", cat("\n\n#### ", count)}}});
    out.extra["problem"] = p.key();
    return out;
  }
  bool has_scorer() const override { return true; }
  bool evaluate(const Example& example, std::string_view completion) const override {
    return same_final_answer(final_text_part(example, "OfflineLetterCount"), completion);
  }

 private:
  struct Problem {
    std::string_view word;
    char letter;
    std::string key() const { return cat(word, ":", letter); }
  };
  Options options_;
};

// A made-up word of 2 to max_syllables syllables, each a consonant, a vowel and, one time in
// four, a closing consonant: "bakotu", "mirsale".
inline std::string invented_word(PythonRandom& rng, int max_syllables) {
  constexpr std::string_view onsets = "bcdfghjklmnprstvwz", vowels = "aeiou", codas = "lnrst";
  std::string word;
  for (std::int64_t syllables = rng.randint(2, max_syllables); syllables > 0; --syllables) {
    word += rng.choice(onsets);
    word += rng.choice(vowels);
    if (rng.random() < 0.25) word += rng.choice(codas);
  }
  return word;
}

class OfflineSpelling final : public Task {
 public:
  struct Options {
    std::uint64_t seed = 0;
    std::size_t size = 1000;
    Split split = Split::train;
    HeldOut held_out{};
    double english_share = 0.25;  // the rest are invented words
    int max_syllables = 3;        // of an invented word (2..max_syllables); more is a harder set
  };

  explicit OfflineSpelling(Options options) : options_(options) {
    NANOCHAT_CHECK(options_.english_share >= 0.0 && options_.english_share <= 1.0, name(), ": english_share ",
                   options_.english_share, " must be within 0..1");
    NANOCHAT_CHECK(options_.max_syllables >= 2 && options_.max_syllables <= 9, name(), ": max_syllables ",
                   options_.max_syllables, " must be within 2..9");
  }

  // The default 3 syllables keep the plain name; others are named, so results of harder sets differ.
  std::string name() const override {
    return options_.max_syllables == 3
               ? cat("OfflineSpelling(", name_of(options_.split), ")")
               : cat("OfflineSpelling(", name_of(options_.split), ", ", options_.max_syllables, " syllables)");
  }
  std::size_t size() const override { return options_.size; }
  Example example(std::size_t index) const override {
    check_index(index);
    PythonRandom rng = example_rng(options_.seed, "spelling", index);
    const std::string word = draw_in_split<std::string>(
        rng, options_.held_out, options_.split, name(),
        [&](PythonRandom& r) {
          return r.random() < options_.english_share ? std::string(r.choice(kOfflineWords))
                                                      : invented_word(r, options_.max_syllables);
        },
        [](const std::string& w) -> std::string_view { return w; });
    Example out;
    out.conversation.messages.push_back({"user", cat("Spell the word: ", word)});
    out.conversation.messages.push_back({"assistant", cat(word, ":", spelling_detail::comma_letters(word))});
    out.extra["problem"] = word;
    return out;
  }
  bool has_scorer() const override { return true; }
  // Right when the reply, stripped of surrounding whitespace, is the spelling.
  bool evaluate(const Example& example, std::string_view completion) const override {
    const auto& gold = std::get<std::string>(example.conversation.messages.back().content);
    const std::size_t first = completion.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) return false;
    return completion.substr(first, completion.find_last_not_of(" \t\r\n") - first + 1) == gold;
  }

 private:
  Options options_;
};

}  // namespace nanochat::tasks
