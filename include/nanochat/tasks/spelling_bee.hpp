#pragma once
// nanochat's two spelling tasks, generated from a word list (tasks/spellingbee.py):
//   SpellingBee: "how many <letter> in <word>": the assistant spells the word, counts by hand
//     with a running tally, checks with the calculator ('<word>'.count('<letter>')) and ends
//     with "#### <count>" (scored like GSM8K).
//   SimpleSpelling: "Spell the word: <w>" -> "<w>:<w,o,r,d>".
// Example i draws from Python's random.Random(i) for the train split, exactly as nanochat does,
// so with nanochat's word list (words_alpha.txt) these are nanochat's own conversations. The
// test split seeds with 10,000,000 + i, nanochat's later fix (commit 9777070): at f37d45c the
// test seed -(i+1) collided with train seed i+1 (CPython seeds with |seed|).
//
// The word list (by default nanochat's words_alpha.txt in BASE when downloaded, else Debian's
// /usr/share/dict/words): one word per line, surrounding whitespace stripped; lines not all
// a-z are skipped (Debian's /usr/share/dict/words holds proper nouns and possessives, which
// nanochat's all-lowercase list does not; on words_alpha.txt nothing is skipped).

#include <array>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/core/read_file.hpp"
#include "nanochat/data/paths.hpp"
#include "nanochat/tasks/answer.hpp"
#include "nanochat/tasks/dataset_files.hpp"
#include "nanochat/tasks/gsm8k.hpp"
#include "nanochat/tasks/python_random.hpp"
#include "nanochat/tasks/task.hpp"

namespace nanochat::tasks {

// nanochat's word list (tasks/spellingbee.py's WORD_LIST_URL), where nanochat and
// `download --words-alpha` keep it.
inline constexpr std::string_view kWordsAlphaUrl =
    "https://raw.githubusercontent.com/dwyl/english-words/refs/heads/master/words_alpha.txt";
inline std::filesystem::path words_alpha_path() { return data::base_dir() / "words_alpha.txt"; }

// nanochat's words_alpha.txt when it has been downloaded, else Debian's wamerican list.
inline std::filesystem::path default_word_list() {
  std::error_code ec;
  return std::filesystem::is_regular_file(words_alpha_path(), ec) ? words_alpha_path()
                                                                   : std::filesystem::path("/usr/share/dict/words");
}

inline std::vector<std::string> read_word_list(const std::filesystem::path& path) {
  require_dataset_file(path, "word list",
                       "a word list, one word per line (Debian's wamerican package installs "
                       "/usr/share/dict/words)",
                       cat("download --words-alpha (nanochat's list, saved as ", words_alpha_path().string(),
                           " and then read by default)"));
  const std::string text = read_file(path);
  std::vector<std::string> words;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    const std::size_t first = line.find_first_not_of(" \t\r\f\v");
    if (first == std::string_view::npos) continue;
    line = line.substr(first, line.find_last_not_of(" \t\r\f\v") - first + 1);
    bool lowercase = true;
    for (char c : line) lowercase = lowercase && c >= 'a' && c <= 'z';
    if (lowercase) words.emplace_back(line);
  }
  NANOCHAT_CHECK(!words.empty(), path.string(), ": no all-lowercase a-z words in the word list");
  return words;
}

namespace spelling_detail {

inline constexpr std::string_view kLetters = "abcdefghijklmnopqrstuvwxyz";
inline constexpr std::int64_t kTestSeedOffset = 10'000'000;

inline std::int64_t example_seed(Split split, std::size_t index) {
  return static_cast<std::int64_t>(index) + (split == Split::test ? kTestSeedOffset : 0);
}

// nanochat's user message templates (data augmentation over phrasing and language), kept
// verbatim (nanochat is MIT-licensed) because they define the task: with them our SpellingBee
// train and test conversations are nanochat's, so its scores compare with nanochat's.
inline constexpr std::array<std::string_view, 51> kTemplates = {
    "How many {letter} are in the word {word}",
    "How many {letter} are in {word}",
    "Count the number of {letter} in {word}",
    "How many times does {letter} appear in {word}",
    "What's the count of {letter} in {word}",
    "In the word {word}, how many {letter} are there",
    "How many letter {letter} are in the word {word}",
    "Count how many {letter} appear in {word}",
    "Tell me the number of {letter} in {word}",
    "How many occurrences of {letter} are in {word}",
    "Find the count of {letter} in {word}",
    "Can you count the {letter} letters in {word}",
    "What is the frequency of {letter} in {word}",
    "How many {letter}s are in {word}",
    "How many {letter}'s are in {word}",
    "Count all the {letter} in {word}",
    "How many times is {letter} in {word}",
    "Number of {letter} in {word}",
    "Total count of {letter} in {word}",
    "How many {letter} does {word} have",
    "How many {letter} does {word} contain",
    "What's the number of {letter} in {word}",
    "{word} has how many {letter}",
    "In {word}, count the {letter}",
    "How many {letter} appear in {word}",
    "Count the {letter} in {word}",
    "Give me the count of {letter} in {word}",
    "How many instances of {letter} in {word}",
    "Show me how many {letter} are in {word}",
    "Calculate the number of {letter} in {word}",
    "¿Cuántas {letter} hay en {word}?",
    "¿Cuántas veces aparece {letter} en {word}?",
    "Cuenta las {letter} en {word}",
    "¿Cuántas letras {letter} tiene {word}?",
    "{word}中有多少个{letter}",
    "{word}里有几个{letter}",
    "数一下{word}中的{letter}",
    "{word}这个词里有多少{letter}",
    "{word}에 {letter}가 몇 개 있나요",
    "{word}에서 {letter}의 개수는",
    "{word}에 {letter}가 몇 번 나오나요",
    "{word}라는 단어에 {letter}가 몇 개",
    "Combien de {letter} dans {word}",
    "Combien de fois {letter} apparaît dans {word}",
    "Compte les {letter} dans {word}",
    "Wie viele {letter} sind in {word}",
    "Wie oft kommt {letter} in {word} vor",
    "Zähle die {letter} in {word}",
    "{word}に{letter}は何個ありますか",
    "{word}の中に{letter}がいくつ",
    "{word}に{letter}が何回出てくる",
};

// Python's str.lower() on these templates: their only capitals are ASCII.
inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

inline std::string fill_template(std::string_view pattern, std::string_view letter, std::string_view word) {
  std::string out;
  for (std::size_t i = 0; i < pattern.size();) {
    if (pattern.compare(i, 8, "{letter}") == 0) {
      out += letter;
      i += 8;
    } else if (pattern.compare(i, 6, "{word}") == 0) {
      out += word;
      i += 6;
    } else {
      out += pattern[i++];
    }
  }
  return out;
}

inline std::string comma_letters(std::string_view word) {
  std::string out;
  for (std::size_t i = 0; i < word.size(); ++i) {
    if (i > 0) out += ',';
    out += word[i];
  }
  return out;
}

}  // namespace spelling_detail

// The assistant's reply to "how many <letter> in <word>": a manual count, then the calculator.
inline std::vector<MessagePart> letter_count_solution(std::string_view word, char letter) {
  using spelling_detail::comma_letters;
  const std::string l(1, letter);
  std::string manual = cat("We are asked to find the number '", l, "' in the word '", word,
                           "'. Let me try a manual approach first.\n\nFirst spell the word out:\n", word, ":",
                           comma_letters(word), "\n\nThen count the occurrences of '", l, "':\n");
  int count = 0;
  for (std::size_t i = 0; i < word.size(); ++i) {
    // No space between the position and the letter: " a" and "a" are different tokens.
    if (word[i] == letter) {
      manual += cat(i + 1, ":", word[i], " hit! count=", ++count, "\n");
    } else {
      manual += cat(i + 1, ":", word[i], "\n");
    }
  }
  manual += cat("\nThis gives us ", count, ".");
  return {{"text", manual},
          {"text", "\n\nLet me double check this using Python:\n\n"},
          {"python", cat("'", word, "'.count('", l, "')")},
          {"python_output", std::to_string(count)},
          {"text", cat("\n\nPython gives us ", count, ".\n\nMy final answer is:\n\n#### ", count)}};
}

class SpellingBee final : public Task {
 public:
  SpellingBee(std::vector<std::string> words, std::size_t size, Split split)
      : words_(std::move(words)), size_(size), split_(split) {
    NANOCHAT_CHECK(!words_.empty(), "SpellingBee: empty word list");
  }

  std::string name() const override { return cat("SpellingBee(", name_of(split_), ")"); }
  std::size_t size() const override { return size_; }
  Example example(std::size_t index) const override {
    using namespace spelling_detail;
    check_index(index);
    PythonRandom rng(example_seed(split_, index));
    const std::string& word = rng.choice(words_);
    const char letter = rng.random() < 0.9 ? rng.choice(word) : rng.choice(kLetters);
    std::string pattern(rng.choice(kTemplates));
    if (rng.random() < 0.3) pattern = ascii_lower(pattern);
    constexpr std::array<std::string_view, 3> quotes = {"", "'", "\""};
    const std::string_view letter_quote = rng.choice(quotes);
    const std::string_view word_quote = rng.choice(quotes);
    std::string user = fill_template(pattern, cat(letter_quote, letter, letter_quote), cat(word_quote, word, word_quote));
    if (rng.random() < 0.5) user += "?";
    Example out;
    out.conversation.messages.push_back({"user", user});
    out.conversation.messages.push_back({"assistant", letter_count_solution(word, letter)});
    return out;
  }
  bool has_scorer() const override { return true; }
  bool evaluate(const Example& example, std::string_view completion) const override {
    return same_final_answer(final_text_part(example, "SpellingBee"), completion);
  }

 private:
  std::vector<std::string> words_;
  std::size_t size_;
  Split split_;
};

class SimpleSpelling final : public Task {
 public:
  SimpleSpelling(std::vector<std::string> words, std::size_t size, Split split)
      : words_(std::move(words)), size_(size), split_(split) {
    NANOCHAT_CHECK(!words_.empty(), "SimpleSpelling: empty word list");
    PythonRandom(42).shuffle(words_);  // a different word order than SpellingBee's
  }

  std::string name() const override { return cat("SimpleSpelling(", name_of(split_), ")"); }
  std::size_t size() const override { return size_; }
  Example example(std::size_t index) const override {
    check_index(index);
    PythonRandom rng(spelling_detail::example_seed(split_, index));
    const std::string& word = rng.choice(words_);
    Example out;
    out.conversation.messages.push_back({"user", cat("Spell the word: ", word)});
    out.conversation.messages.push_back({"assistant", cat(word, ":", spelling_detail::comma_letters(word))});
    return out;
  }

 private:
  std::vector<std::string> words_;
  std::size_t size_;
  Split split_;
};

}  // namespace nanochat::tasks
