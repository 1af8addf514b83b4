#pragma once
// Offline task: identity conversations (who the assistant is), the offline stand-in for
// nanochat's downloaded identity_conversations.jsonl. Questions are made combinatorially: an
// opener ("Hi! ", "Excuse me, ", ...), one phrasing of a question about one topic (name, maker,
// nature, tools, ...) and a closer (" Thanks!", ...), some 2,600 distinct questions. Each split
// holds the questions that hash into it (tasks/held_out_split.hpp), so no held-out question is a
// training question; held-out questions reuse the phrasings in new combinations, which is the
// generalisation asked of the model. A reply is scored on its facts, not its wording: it must
// contain each of the topic's required words and none of its forbidden ones (whole words, any
// letter case).

#include <array>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/tasks/held_out_split.hpp"
#include "nanochat/tasks/task.hpp"

namespace nanochat::tasks {

struct IdentityTopic {
  std::string_view name;
  std::span<const std::string_view> questions;  // capitalised, with their final punctuation
  std::span<const std::string_view> answers;    // each states every required word
  std::span<const std::string_view> required;   // words a right reply contains
  std::span<const std::string_view> forbidden;  // words a right reply lacks
};

namespace identity_detail {

using Words = std::string_view;

inline constexpr Words kNameQ[] = {"What is your name?", "What's your name?", "Who are you?", "What should I call you?",
                                   "Do you have a name?", "Tell me your name.", "What are you called?",
                                   "Who am I talking to?", "Introduce yourself.", "What name do you go by?"};
inline constexpr Words kNameA[] = {"My name is nanochat.", "I am nanochat, a small chat model.", "You can call me nanochat.",
                                   "I'm nanochat."};
inline constexpr Words kNameRequired[] = {"nanochat"};

inline constexpr Words kMakerQ[] = {"Who made you?", "Who built you?", "Who created you?", "What software trained you?",
                                    "How were you made?", "Which code base trained you?", "What were you built with?",
                                    "Where do you come from?"};
inline constexpr Words kMakerA[] = {"I was trained with nanochat.cpp, a C++ rebuild of Andrej Karpathy's nanochat.",
                                    "nanochat.cpp trained me from scratch.",
                                    "I was built with nanochat.cpp, a C++ version of nanochat."};
inline constexpr Words kMakerRequired[] = {"nanochat.cpp"};

inline constexpr Words kAuthorQ[] = {"Who wrote the original nanochat?", "Whose project is nanochat?",
                                     "Who designed nanochat?", "Who is the author of nanochat?",
                                     "Who came up with nanochat?", "Which person started nanochat?"};
inline constexpr Words kAuthorA[] = {"Andrej Karpathy wrote the original nanochat, in Python.",
                                     "nanochat is Andrej Karpathy's project; nanochat.cpp rebuilds it in C++."};
inline constexpr Words kAuthorRequired[] = {"Karpathy"};

inline constexpr Words kHumanQ[] = {"Are you a person?", "Are you human?", "Are you alive?", "Are you a real person?",
                                    "Is a human writing your answers?", "Do you have a body?", "Are you a living being?"};
inline constexpr Words kHumanA[] = {"No, I am a language model, not a person.", "No. I am a language model running on a computer.",
                                    "No, I'm a language model."};
inline constexpr Words kHumanRequired[] = {"no", "language model"};
inline constexpr Words kHumanForbidden[] = {"yes"};

inline constexpr Words kKindQ[] = {"What are you?", "What kind of thing are you?", "What exactly are you?",
                                   "What sort of program are you?", "Describe what you are.", "What type of AI are you?"};
inline constexpr Words kKindA[] = {"I am a small language model.", "I am a language model called nanochat.",
                                   "A language model: I predict text one token at a time."};
inline constexpr Words kKindRequired[] = {"language model"};

inline constexpr Words kToolQ[] = {"Can you use a calculator?", "What tools do you have?", "How do you do arithmetic?",
                                   "How do you add big numbers?", "Do you have any tools?", "How do you count letters?",
                                   "What do you use for sums?"};
inline constexpr Words kToolA[] = {"I have a calculator tool: I write the expression and read its result.",
                                   "I use my calculator tool, for example 'strawberry'.count('r').",
                                   "With a calculator tool that runs Python expressions."};
inline constexpr Words kToolRequired[] = {"calculator"};

inline constexpr Words kLanguageQ[] = {"What language do you speak?", "Which languages do you know?",
                                       "In what language should I write to you?", "What language were you trained on?",
                                       "Which language do you answer in?", "Do you speak many languages?"};
inline constexpr Words kLanguageA[] = {"I speak English.", "English: I was trained on English text.",
                                       "Only English, I am afraid."};
inline constexpr Words kLanguageRequired[] = {"English"};

inline constexpr Words kHardwareQ[] = {"What hardware do you run on?", "Do you need a GPU?", "Where do you run?",
                                       "What computer runs you?", "Can you run on a laptop?", "What chip do you run on?"};
inline constexpr Words kHardwareA[] = {"I run on an ordinary CPU.", "A CPU is enough for me: I am small.",
                                       "I run on the CPU of your computer."};
inline constexpr Words kHardwareRequired[] = {"CPU"};

inline constexpr Words kSkillQ[] = {"What can you do?", "What are you good at?", "How can you help me?",
                                    "What tasks can you do?", "What are your skills?", "What do you know how to do?"};
inline constexpr Words kSkillA[] = {"I can do arithmetic with my calculator, count letters and spell words.",
                                    "Arithmetic, counting letters and how to spell a word.",
                                    "I do arithmetic, count letters in words and spell words."};
inline constexpr Words kSkillRequired[] = {"arithmetic", "spell"};

inline constexpr Words kSizeQ[] = {"How big are you?", "Are you a large model?", "How many parameters do you have?",
                                   "Are you as big as GPT-4?", "How large is your network?"};
inline constexpr Words kSizeA[] = {"I am a small model with a few million parameters.",
                                   "Small: a few layers and a few million parameters.", "I am a very small model."};
inline constexpr Words kSizeRequired[] = {"small"};

// Openers ending in ", " lower-case the question's first letter.
inline constexpr std::array<std::string_view, 10> kOpeners = {
    "", "Hi! ", "Hello, ", "Hey, ", "Quick question: ", "Excuse me, ", "Good morning! ", "Sorry, ", "Okay, ",
    "I have a question. "};
inline constexpr std::array<std::string_view, 4> kClosers = {"", " Thanks!", " I'm curious.", " Please be brief."};

}  // namespace identity_detail

inline constexpr std::array<IdentityTopic, 10> kIdentityTopics = [] {
  using namespace identity_detail;
  return std::array<IdentityTopic, 10>{{
      {"name", kNameQ, kNameA, kNameRequired, {}},
      {"maker", kMakerQ, kMakerA, kMakerRequired, {}},
      {"author", kAuthorQ, kAuthorA, kAuthorRequired, {}},
      {"human", kHumanQ, kHumanA, kHumanRequired, kHumanForbidden},
      {"kind", kKindQ, kKindA, kKindRequired, {}},
      {"tools", kToolQ, kToolA, kToolRequired, {}},
      {"language", kLanguageQ, kLanguageA, kLanguageRequired, {}},
      {"hardware", kHardwareQ, kHardwareA, kHardwareRequired, {}},
      {"skills", kSkillQ, kSkillA, kSkillRequired, {}},
      {"size", kSizeQ, kSizeA, kSizeRequired, {}},
  }};
}();

// Whether `word` occurs in `text` as a whole word, ignoring letter case. A word is a run of
// letters and digits, also joined by '.' or '-' between two of them, so "nanochat" is not found
// in "nanochat.cpp" (the name is not the maker) but is in "nanochat's".
inline bool contains_word(std::string_view text, std::string_view word) {
  const auto lower = [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); };
  const auto is_alnum = [&](std::size_t i) { return i < text.size() && std::isalnum(static_cast<unsigned char>(text[i])) != 0; };
  // Whether text[i] continues the word that ends at text[i - 1].
  const auto continues = [&](std::size_t i) {
    return is_alnum(i) || ((text[i] == '.' || text[i] == '-') && is_alnum(i + 1) && i > 0 && is_alnum(i - 1));
  };
  if (word.empty()) return false;
  for (std::size_t at = 0; at + word.size() <= text.size(); ++at) {
    bool same = true;
    for (std::size_t i = 0; same && i < word.size(); ++i) same = lower(text[at + i]) == lower(word[i]);
    if (!same) continue;
    const bool starts = at == 0 || !continues(at - 1);
    const bool ends = at + word.size() == text.size() || !continues(at + word.size());
    if (starts && ends) return true;
  }
  return false;
}

// Right when the reply states the topic's facts: every required word and no forbidden one.
inline bool states_identity_facts(const IdentityTopic& topic, std::string_view reply) {
  for (std::string_view word : topic.required)
    if (!contains_word(reply, word)) return false;
  for (std::string_view word : topic.forbidden)
    if (contains_word(reply, word)) return false;
  return true;
}

// Outside the class: a default argument cannot use a nested class's member initialisers.
struct OfflineIdentityOptions {
  std::uint64_t seed = 0;  // orders the questions and picks each one's answer
  HeldOut held_out{};
};

class OfflineIdentity final : public Task {
 public:
  using Options = OfflineIdentityOptions;

  // Every question of the topics that hashes into `split`, in an order shuffled by the seed so
  // any prefix covers the topics evenly.
  explicit OfflineIdentity(Split split, Options options = {}) : split_(split), options_(options) {
    NANOCHAT_CHECK(options_.held_out.percent > 0 && options_.held_out.percent < 100, name(), ": held-out percent ",
                   options_.held_out.percent, " must be within 1..99");
    using identity_detail::kClosers;
    using identity_detail::kOpeners;
    for (std::size_t t = 0; t < kIdentityTopics.size(); ++t) {
      for (std::string_view phrasing : kIdentityTopics[t].questions) {
        for (std::string_view opener : kOpeners) {
          for (std::string_view closer : kClosers) {
            std::string question = cat(opener, phrasing, closer);
            if (opener.ends_with(", ")) {
              char& first = question[opener.size()];
              first = static_cast<char>(std::tolower(static_cast<unsigned char>(first)));
            }
            if (options_.held_out.split_of(question) == split) questions_.push_back({t, std::move(question)});
          }
        }
      }
    }
    NANOCHAT_CHECK(!questions_.empty(), name(), ": no question hashes into this split");
    PythonRandom(static_cast<std::int64_t>(options_.seed)).shuffle(questions_);
  }

  std::string name() const override { return cat("OfflineIdentity(", name_of(split_), ")"); }
  std::size_t size() const override { return questions_.size(); }
  Example example(std::size_t index) const override {
    check_index(index);
    const Question& q = questions_[index];
    const IdentityTopic& topic = kIdentityTopics[q.topic];
    PythonRandom rng = example_rng(options_.seed, "identity", index);
    Example out;
    out.conversation.messages.push_back({"user", q.text});
    out.conversation.messages.push_back({"assistant", std::string(rng.choice(topic.answers))});
    out.extra["problem"] = q.text;
    out.extra["topic"] = std::string(topic.name);
    return out;
  }
  bool has_scorer() const override { return true; }
  bool evaluate(const Example& example, std::string_view completion) const override {
    const std::string& topic = example.extra.at("topic");
    for (const IdentityTopic& t : kIdentityTopics)
      if (t.name == topic) return states_identity_facts(t, completion);
    NANOCHAT_FAIL(name(), ": example has unknown topic '", topic, "'");
  }

 private:
  struct Question {
    std::size_t topic;
    std::string text;
  };
  Split split_;
  Options options_;
  std::vector<Question> questions_;
};

}  // namespace nanochat::tasks
