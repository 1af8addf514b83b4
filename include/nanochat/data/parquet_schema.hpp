#pragma once
// A parquet schema as a tree. The footer stores it flattened (depth first, each group with its
// child count); this rebuilds the tree, gives every node its maximum definition and repetition
// levels (Dremel: each OPTIONAL or REPEATED node on the path from the root adds a definition
// level, each REPEATED node a repetition level) and the range of leaves (column chunks) under
// it, and resolves a field's logical shape for record assembly: structs, leaves, LIST groups in
// the 3-level form writers use today and the legacy 2-level forms of parquet-format's
// LogicalTypes.md backward-compatibility rules, and bare REPEATED fields. Shapes it cannot
// represent (MAP, a malformed LIST) fail when that field's shape is asked for, so the file's
// other columns stay readable.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/core/error.hpp"
#include "nanochat/data/parquet_metadata.hpp"

namespace nanochat::data::parquet {

struct SchemaNode {
  std::string name;
  std::string path;  // dotted from the root, as parquet's ColumnPath prints: "messages.list.element.role"
  Repetition repetition = Repetition::required;
  std::int32_t physical_type = -1;  // -1 for a group
  std::int32_t converted_type = -1;
  std::int16_t logical_type = 0;
  std::vector<std::size_t> children;  // node indices
  int max_definition = 0;  // counting this node
  int max_repetition = 0;
  std::size_t first_leaf = 0, end_leaf = 0;  // the leaves under this node: [first_leaf, end_leaf)

  bool is_leaf() const { return children.empty(); }
};

// How one value of a field nests, for the record assembler.
struct Shape {
  enum class Kind { leaf, structure, list };
  Kind kind = Kind::leaf;
  std::size_t node = 0;  // the schema node (for a list, the LIST group or the bare repeated field)
  std::string name;      // the member name in the enclosing struct
  bool nullable = false;
  // The value exists when a leaf's definition level reaches present_level; below it (only
  // possible when nullable) the value is null.
  int present_level = 0;
  // Lists: elements exist when the definition level reaches element_level (below it the list is
  // empty), and a repetition level equal to repeat_level starts the next element.
  int element_level = 0;
  int repeat_level = 0;
  std::vector<Shape> children;  // struct members in schema order, or a list's one element
  std::size_t first_leaf = 0, end_leaf = 0;
};

class Schema {
 public:
  // Nesting deeper than this is refused: it bounds the recursion of the tree walks, and real
  // datasets nest a handful of levels.
  static constexpr int kMaxDepth = 32;

  Schema() = default;
  // `file` names the file in errors.
  Schema(const std::vector<SchemaElement>& elements, const std::string& file) : file_(file) {
    NANOCHAT_CHECK(!elements.empty(), file_, ": footer has no schema");
    std::size_t next = add_node(elements, 0, SIZE_MAX, 0);
    NANOCHAT_CHECK(next == elements.size(), file_, ": schema has ", elements.size() - next,
                   " elements after the root's ", next, "-element tree");
  }

  const std::vector<SchemaNode>& nodes() const { return nodes_; }
  const SchemaNode& root() const { return nodes_[0]; }
  std::size_t num_leaves() const { return leaves_.size(); }
  const SchemaNode& leaf(std::size_t index) const { return nodes_[leaves_[index]]; }

  // The node of a top-level field, or an Error naming the fields there are.
  std::size_t field(std::string_view name) const {
    for (std::size_t child : root().children) {
      if (nodes_[child].name == name) return child;
    }
    std::string names;
    for (std::size_t child : root().children) names += cat(names.empty() ? "" : ", ", nodes_[child].name);
    NANOCHAT_FAIL(file_, ": no field named '", name, "' (the fields are: ", names, ")");
  }

  bool has_field(std::string_view name) const {
    for (std::size_t child : root().children) {
      if (nodes_[child].name == name) return true;
    }
    return false;
  }

  // The logical shape of a node's values, read as a member of its parent.
  Shape shape(std::size_t node) const {
    const SchemaNode& n = nodes_[node];
    if (n.repetition == Repetition::repeated) {
      // A bare repeated field (no LIST group around it) is a required list of required elements.
      NANOCHAT_CHECK(!is_list(n) && !is_map(n), file_, ": field '", n.path,
                     "' is a REPEATED group annotated ", is_map(n) ? "MAP" : "LIST",
                     "; such groups must be OPTIONAL or REQUIRED");
      return list_shape(node, false, n.max_definition - 1, node, value_shape(node));
    }
    NANOCHAT_CHECK(!is_map(n), file_, ": field '", n.path, "' is a MAP, which the reader does not support");
    if (is_list(n)) {
      NANOCHAT_CHECK(!n.is_leaf() && n.children.size() == 1 &&
                         nodes_[n.children[0]].repetition == Repetition::repeated,
                     file_, ": field '", n.path, "' is annotated LIST but is not a group with one REPEATED child");
      const std::size_t repeated = n.children[0];
      const SchemaNode& r = nodes_[repeated];
      // LogicalTypes.md's rules: a repeated leaf, a repeated group of several fields, or one
      // named "array" or "<list>_tuple" is itself the element (2-level lists); otherwise the
      // repeated group wraps the element (the 3-level form).
      const bool two_level = r.is_leaf() || r.children.size() > 1 || r.name == "array" ||
                             r.name == n.name + "_tuple";
      Shape element = two_level ? value_shape(repeated) : shape(r.children[0]);
      return list_shape(node, n.repetition == Repetition::optional, n.max_definition, repeated, std::move(element));
    }
    Shape out = value_shape(node);
    out.nullable = n.repetition == Repetition::optional;
    return out;
  }

 private:
  static bool is_list(const SchemaNode& n) {
    return n.converted_type == kConvertedList || n.logical_type == kLogicalList;
  }
  static bool is_map(const SchemaNode& n) {
    return n.converted_type == kConvertedMap || n.converted_type == kConvertedMapKeyValue ||
           n.logical_type == kLogicalMap;
  }

  // A shape for node with its name and leaves filled in.
  Shape named(Shape::Kind kind, std::size_t node) const {
    const SchemaNode& n = nodes_[node];
    Shape out;
    out.kind = kind;
    out.node = node;
    out.name = n.name;
    out.present_level = n.max_definition;
    out.first_leaf = n.first_leaf;
    out.end_leaf = n.end_leaf;
    return out;
  }

  // A leaf, or a struct of its children's shapes; not nullable (the caller decides). A repeated
  // node as its list's element is this: present whenever the list has elements.
  Shape value_shape(std::size_t node) const {
    if (nodes_[node].is_leaf()) return named(Shape::Kind::leaf, node);
    Shape out = named(Shape::Kind::structure, node);
    for (std::size_t child : nodes_[node].children) out.children.push_back(shape(child));
    return out;
  }

  Shape list_shape(std::size_t node, bool nullable, int present_level, std::size_t repeated, Shape element) const {
    Shape out = named(Shape::Kind::list, node);
    out.nullable = nullable;
    out.present_level = present_level;
    out.element_level = nodes_[repeated].max_definition;
    out.repeat_level = nodes_[repeated].max_repetition;
    out.children.push_back(std::move(element));
    return out;
  }

  // Adds elements[index] and its subtree under parent; returns the index after the subtree.
  std::size_t add_node(const std::vector<SchemaElement>& elements, std::size_t index, std::size_t parent, int depth) {
    NANOCHAT_CHECK(index < elements.size(), file_, ": schema ends inside a group (", elements.size(), " elements)");
    NANOCHAT_CHECK(depth <= kMaxDepth, file_, ": schema nests deeper than ", kMaxDepth, " levels");
    const SchemaElement& e = elements[index];
    const std::size_t id = nodes_.size();
    SchemaNode& node = nodes_.emplace_back();
    node.name = e.name;
    node.repetition = e.repetition;
    node.physical_type = e.type;
    node.converted_type = e.converted_type;
    node.logical_type = e.logical_type;
    if (parent != SIZE_MAX) {
      const SchemaNode& up = nodes_[parent];
      NANOCHAT_CHECK(e.repetition == Repetition::required || e.repetition == Repetition::optional ||
                         e.repetition == Repetition::repeated,
                     file_, ": field '", e.name, "' has repetition ", e.repetition);
      node.path = parent == 0 ? e.name : cat(up.path, ".", e.name);
      node.max_definition = up.max_definition + (e.repetition == Repetition::required ? 0 : 1);
      node.max_repetition = up.max_repetition + (e.repetition == Repetition::repeated ? 1 : 0);
    }
    node.first_leaf = leaves_.size();
    NANOCHAT_CHECK(e.num_children >= 0 && static_cast<std::size_t>(e.num_children) < elements.size() - index,
                   file_, ": schema element '", e.name, "' claims ", e.num_children, " children but ",
                   elements.size() - index - 1, " elements follow");
    if (e.num_children == 0 && parent == SIZE_MAX) return index + 1;  // a file without columns
    if (e.num_children == 0) {
      NANOCHAT_CHECK(e.type >= 0, file_, ": field '", nodes_[id].path, "' is a group with no children");
      leaves_.push_back(id);
      nodes_[id].end_leaf = leaves_.size();
      return index + 1;
    }
    std::size_t next = index + 1;
    for (std::int32_t c = 0; c < e.num_children; ++c) {
      nodes_[id].children.push_back(nodes_.size());  // nodes_ may reallocate: index, not reference
      next = add_node(elements, next, id, depth + 1);
    }
    nodes_[id].end_leaf = leaves_.size();
    return next;
  }

  std::string file_;
  std::vector<SchemaNode> nodes_;   // depth first, nodes_[0] the root
  std::vector<std::size_t> leaves_;  // node index of each leaf, in column chunk order
};

}  // namespace nanochat::data::parquet
