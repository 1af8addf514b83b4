#pragma once
// Running untrusted Python (a model's HumanEval completion) in a separate process with limits:
// the C++ counterpart of nanochat's execute_code (spec §7.5), but contained by the kernel rather
// than by disabling Python functions. Linux only; docs/eval.md says what holds and how to check.
//
// The program runs as `python3 -I -B -` (isolated: no PYTHON* variables, no user site; the
// program is read from stdin, an in-memory file) in a child made with clone() in new user,
// pid, network, mount, IPC and UTS namespaces:
// - user: the child is an unprivileged uid (kSandboxUid inside, nobody outside when we are root,
//   else our own uid), no supplementary groups, no capabilities, no_new_privs. Being root outside
//   is why a user namespace is needed: RLIMIT_NPROC does not bind root, nor anyone with
//   CAP_SYS_ADMIN/CAP_SYS_RESOURCE. It binds this uid, and the kernel counts it per user
//   namespace, so only the sandbox's own processes (threads included) count.
// - pid: the child is pid 1 of its namespace (a small init that reaps, then exits with Python's
//   status); when it dies the kernel kills every process left inside, so a fork bomb's survivors
//   and daemons die with it, and the wall-clock timeout kills the lot with one SIGKILL.
// - network: a fresh namespace holds only a loopback that is down: connect() fails (ENETUNREACH),
//   abstract unix sockets are the namespace's own.
// - mount: the whole tree is made read-only, nosuid, nodev (mount_setattr, recursive: Linux
//   5.12+); a fresh size-limited tmpfs on /tmp is the working directory (it vanishes with the
//   namespace), and an empty read-only tmpfs covers /run (the usual home of host sockets).
// - limits: RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_NPROC, RLIMIT_CORE 0; an empty
//   environment; no descriptor of ours but stdin/stdout/stderr; stdout and stderr captured up to
//   a cap each.
// Where the kernel refuses any of this (no user namespaces, an old kernel, a seccomp profile),
// nothing runs: run_python_sandboxed throws a nanochat::Error saying what failed.

#include <fcntl.h>
#include <linux/close_range.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "nanochat/core/error.hpp"

namespace nanochat::eval {

struct SandboxLimits {
  double timeout_seconds = 5.0;               // wall clock; nanochat's execute_code default
  std::uint64_t memory_bytes = 256ull << 20;  // RLIMIT_AS; nanochat's 256 MiB
  std::uint64_t file_bytes = 16ull << 20;     // RLIMIT_FSIZE, and the size of the writable /tmp
  std::uint64_t max_processes = 16;           // RLIMIT_NPROC in the sandbox (its init and Python count)
  std::size_t output_bytes = 64u << 10;       // stdout and stderr are each kept up to this
  std::filesystem::path python;               // empty: the first python3 on PATH the sandbox may run
};

struct SandboxResult {
  bool passed = false;   // Python exited with status 0 before the timeout
  bool timeout = false;  // killed at the wall-clock timeout
  std::string error;     // why it did not pass: the traceback's last line, a signal, the timeout
  std::string stdout_text, stderr_text;  // each cut at output_bytes
};

// The uid (and gid) the program has inside its user namespace: not 0, so it holds no
// capabilities there after exec.
inline constexpr unsigned kSandboxUid = 1000;

// The name of the memfd that holds the program, and so what every process of a sandbox started
// by process `caller` has as its stdin ("/memfd:<name> (deleted)" in /proc/<pid>/fd/0).
inline std::string sandbox_memfd_name(long caller) { return "nanochat-sandbox-" + std::to_string(caller); }

namespace sandbox_detail {

// Whether "others" may run `file`: when we are root the sandbox runs as nobody, and a python3
// under /root (pyenv's shims, say) is out of its reach.
inline bool others_may_run(const std::filesystem::path& file) {
  std::error_code ec;
  const std::filesystem::path real = std::filesystem::canonical(file, ec);
  if (ec) return false;
  struct stat st {};
  if (::stat(real.c_str(), &st) != 0 || !(st.st_mode & S_IXOTH)) return false;
  for (std::filesystem::path dir = real.parent_path();; dir = dir.parent_path()) {
    if (::stat(dir.c_str(), &st) != 0 || !(st.st_mode & S_IXOTH)) return false;
    if (dir == dir.root_path()) return true;
  }
}

// The first python3 on PATH that the sandbox's uid can run.
inline std::filesystem::path find_python3(bool privileged) {
  const char* path = std::getenv("PATH");
  std::string_view dirs = path ? path : "/usr/bin:/bin";
  while (!dirs.empty()) {
    const std::size_t colon = dirs.find(':');
    const std::filesystem::path candidate = std::filesystem::path(dirs.substr(0, colon)) / "python3";
    if (::access(candidate.c_str(), X_OK) == 0 && (!privileged || others_may_run(candidate))) return candidate;
    dirs = colon == std::string_view::npos ? std::string_view{} : dirs.substr(colon + 1);
  }
  NANOCHAT_FAIL("sandbox: no python3 on PATH that an unprivileged user may run; code execution needs one");
}

// Everything the child needs, prepared before clone(): after it, the child of a possibly
// multithreaded parent may only make system calls (no allocation, no locks).
struct ChildPlan {
  int sync_fd = -1;     // read end: one byte once the parent has written the id maps
  int error_fd = -1;    // write end: a setup failure's message (close-on-exec)
  int program_fd = -1;  // the program, becomes Python's stdin
  int stdout_fd = -1, stderr_fd = -1;
  bool privileged = false;  // our euid is 0: setgroups() is allowed in the namespace
  const char* python = nullptr;
  char* const* argv = nullptr;
  rlim_t cpu_seconds = 0, memory_bytes = 0, file_bytes = 0, max_processes = 0;
  const char* tmp_options = nullptr;
};

// Async-signal-safe: the step that failed and errno, down the error pipe, then exit.
[[noreturn]] inline void child_fail(const ChildPlan& plan, const char* step) {
  const int err = errno;
  char digits[16];
  int n = 0;
  for (int e = err; n == 0 || e > 0; e /= 10) digits[n++] = static_cast<char>('0' + e % 10);
  char message[256];
  std::size_t len = 0;
  for (const char* s = step; *s && len < 200; ++s) message[len++] = *s;
  for (const char* s = " failed, errno "; *s; ++s) message[len++] = *s;
  while (n > 0) message[len++] = digits[--n];
  [[maybe_unused]] const ssize_t written = ::write(plan.error_fd, message, len);
  ::_exit(127);
}

inline int child_main(void* arg) {
  const ChildPlan& plan = *static_cast<const ChildPlan*>(arg);
  char go = 0;
  if (::read(plan.sync_fd, &go, 1) != 1) ::_exit(127);  // the parent gave up
  ::close(plan.sync_fd);
  if (plan.privileged && ::setgroups(0, nullptr) != 0) child_fail(plan, "setgroups");
  // Our copy of the mount tree: private (nothing propagates out), read-only, nosuid, nodev.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) child_fail(plan, "making / private");
  mount_attr read_only{};
  read_only.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  if (::syscall(SYS_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE, &read_only, sizeof read_only) != 0)
    child_fail(plan, "mount_setattr (read-only /)");
  if (::mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, plan.tmp_options) != 0) child_fail(plan, "mounting tmpfs on /tmp");
  struct stat run {};
  if (::stat("/run", &run) == 0 && S_ISDIR(run.st_mode) &&
      ::mount("tmpfs", "/run", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0555") != 0)
    child_fail(plan, "mounting an empty tmpfs on /run");
  if (::chdir("/tmp") != 0) child_fail(plan, "chdir /tmp");
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) child_fail(plan, "no_new_privs");
  if (::setresgid(kSandboxUid, kSandboxUid, kSandboxUid) != 0) child_fail(plan, "setresgid");
  if (::setresuid(kSandboxUid, kSandboxUid, kSandboxUid) != 0) child_fail(plan, "setresuid");
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct no_caps[2]{};
  if (::syscall(SYS_capset, &header, no_caps) != 0) child_fail(plan, "dropping capabilities");

  // A plain fork (no atfork handlers: they may take locks another parent thread held).
  const long python_pid = ::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (python_pid < 0) child_fail(plan, "fork");
  if (python_pid == 0) {
    const auto limit = [&](int resource, rlim_t value, const char* what) {
      const rlimit r{value, value};
      if (::setrlimit(resource, &r) != 0) child_fail(plan, what);
    };
    // RLIMIT_CPU's soft limit sends SIGXCPU, a second later the hard one SIGKILL.
    const rlimit cpu{plan.cpu_seconds, plan.cpu_seconds + 1};
    if (::setrlimit(RLIMIT_CPU, &cpu) != 0) child_fail(plan, "RLIMIT_CPU");
    limit(RLIMIT_AS, plan.memory_bytes, "RLIMIT_AS");
    limit(RLIMIT_FSIZE, plan.file_bytes, "RLIMIT_FSIZE");
    limit(RLIMIT_NPROC, plan.max_processes, "RLIMIT_NPROC");
    limit(RLIMIT_CORE, 0, "RLIMIT_CORE");
    if (::dup2(plan.program_fd, 0) < 0 || ::dup2(plan.stdout_fd, 1) < 0 || ::dup2(plan.stderr_fd, 2) < 0)
      child_fail(plan, "redirecting stdin/stdout/stderr");
    // No other descriptor of ours reaches Python (one open without O_CLOEXEC, a file or a socket,
    // would be a way out); close-on-exec rather than closed, so a failed exec can still report.
    if (::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) != 0) child_fail(plan, "close_range");
    // Our signal mask and ignored signals would survive exec: the limits' signals must act.
    sigset_t none;
    ::sigemptyset(&none);
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0 || ::sigaction(SIGXCPU, &default_action, nullptr) != 0 ||
        ::sigaction(SIGXFSZ, &default_action, nullptr) != 0)
      child_fail(plan, "resetting signals");
    char* const empty_environment[] = {nullptr};
    ::execve(plan.python, plan.argv, empty_environment);
    child_fail(plan, "execve python3");
  }
  ::close(plan.program_fd);
  ::close(plan.stdout_fd);
  ::close(plan.stderr_fd);
  for (;;) {  // pid 1: reap everything; leave with Python's status
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0 && errno != EINTR) ::_exit(126);
    if (pid == python_pid) ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  }
}

// A file descriptor closed when it goes out of scope.
struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

inline void make_pipe(Fd& read_end, Fd& write_end) {
  int fds[2];
  NANOCHAT_CHECK(::pipe2(fds, O_CLOEXEC) == 0, "sandbox: pipe2: ", std::strerror(errno));
  read_end.fd = fds[0];
  write_end.fd = fds[1];
}

inline bool write_proc_file(int pid, const char* name, const std::string& text) {
  const std::string path = cat("/proc/", pid, "/", name);
  const Fd f(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  return f.fd >= 0 && ::write(f.fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
}

inline std::string last_line(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  const std::size_t nl = text.rfind('\n');
  return std::string(nl == std::string_view::npos ? text : text.substr(nl + 1));
}

}  // namespace sandbox_detail

// Runs `program` with Python under the limits, in the namespaces above; waits at most
// timeout_seconds (then kills it and everything it started). Throws nanochat::Error when the
// sandbox cannot be built here; the program's own failures are in the result.
inline SandboxResult run_python_sandboxed(std::string_view program, const SandboxLimits& limits = {}) {
  using namespace sandbox_detail;
  NANOCHAT_CHECK(limits.timeout_seconds > 0 && std::isfinite(limits.timeout_seconds), "sandbox: timeout ",
                 limits.timeout_seconds, " s; it must be positive");
  NANOCHAT_CHECK(limits.max_processes >= 2, "sandbox: max_processes ", limits.max_processes,
                 "; at least 2 (the sandbox's init and Python)");
  const bool privileged = ::geteuid() == 0;
  const std::string python = (limits.python.empty() ? find_python3(privileged) : limits.python).string();
  const std::string refused = "sandbox: code execution is refused: ";

  // Named after the caller, so the processes of one caller's sandboxes can be told from another's.
  const std::string memfd_name = sandbox_memfd_name(::getpid());
  const Fd program_fd(static_cast<int>(::syscall(SYS_memfd_create, memfd_name.c_str(), MFD_CLOEXEC)));
  NANOCHAT_CHECK(program_fd.fd >= 0, refused, "memfd_create: ", std::strerror(errno));
  for (std::size_t done = 0; done < program.size();) {
    const ssize_t n = ::write(program_fd.fd, program.data() + done, program.size() - done);
    NANOCHAT_CHECK(n > 0, "sandbox: writing the program: ", std::strerror(errno));
    done += static_cast<std::size_t>(n);
  }
  NANOCHAT_CHECK(::lseek(program_fd.fd, 0, SEEK_SET) == 0, "sandbox: lseek: ", std::strerror(errno));

  Fd out_r, out_w, err_r, err_w, sync_r, sync_w, fail_r, fail_w;
  make_pipe(out_r, out_w);
  make_pipe(err_r, err_w);
  make_pipe(sync_r, sync_w);
  make_pipe(fail_r, fail_w);

  std::string arg0 = python, isolated = "-I", no_pyc = "-B", from_stdin = "-";
  char* argv[] = {arg0.data(), isolated.data(), no_pyc.data(), from_stdin.data(), nullptr};
  const std::string tmp_options = cat("size=", limits.file_bytes, ",nr_inodes=4096,mode=0700,uid=", kSandboxUid,
                                      ",gid=", kSandboxUid);
  ChildPlan plan;
  plan.sync_fd = sync_r.fd;
  plan.error_fd = fail_w.fd;
  plan.program_fd = program_fd.fd;
  plan.stdout_fd = out_w.fd;
  plan.stderr_fd = err_w.fd;
  plan.privileged = privileged;
  plan.python = python.c_str();
  plan.argv = argv;
  plan.cpu_seconds = static_cast<rlim_t>(std::ceil(limits.timeout_seconds)) + 1;
  plan.memory_bytes = limits.memory_bytes;
  plan.file_bytes = limits.file_bytes;
  plan.max_processes = limits.max_processes;
  plan.tmp_options = tmp_options.c_str();

  constexpr std::size_t kStack = 256u << 10;
  void* stack = ::mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  NANOCHAT_CHECK(stack != MAP_FAILED, "sandbox: mmap of the child's stack: ", std::strerror(errno));
  const int flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD;
  const pid_t child = ::clone(child_main, static_cast<char*>(stack) + kStack, flags, &plan);
  const int clone_errno = errno;
  ::munmap(stack, kStack);  // the child has its own copy of the address space
  NANOCHAT_CHECK(child > 0, refused, "the kernel would not create new user, pid, network and mount namespaces (clone: ",
                 std::strerror(clone_errno),
                 "); allow unprivileged user namespaces (user.max_user_namespaces, "
                 "kernel.apparmor_restrict_unprivileged_userns) or run where they are allowed");
  sync_r.reset();
  fail_w.reset();
  out_w.reset();
  err_w.reset();

  // Maps: kSandboxUid inside is nobody outside when we are root (so the program owns no host
  // file), else ourselves (the only id an unprivileged process may map).
  const unsigned outer_uid = plan.privileged ? 65534u : ::geteuid();
  const unsigned outer_gid = plan.privileged ? 65534u : ::getegid();
  const bool mapped = (plan.privileged || write_proc_file(child, "setgroups", "deny")) &&
                      write_proc_file(child, "uid_map", cat(kSandboxUid, " ", outer_uid, " 1\n")) &&
                      write_proc_file(child, "gid_map", cat(kSandboxUid, " ", outer_gid, " 1\n"));
  const int map_errno = errno;
  if (!mapped) {
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    NANOCHAT_FAIL(refused, "writing the user namespace's id maps failed: ", std::strerror(map_errno));
  }
  const char go = 1;
  if (::write(sync_w.fd, &go, 1) != 1) {
    const int write_errno = errno;
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    NANOCHAT_FAIL("sandbox: signalling the child: ", std::strerror(write_errno));
  }
  sync_w.reset();

  SandboxResult result;
  std::string setup_error;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                             std::chrono::duration<double>(limits.timeout_seconds));
  // Read until every pipe is closed: the pipes close when the namespace's last process is gone.
  pollfd fds[3] = {{out_r.fd, POLLIN, 0}, {err_r.fd, POLLIN, 0}, {fail_r.fd, POLLIN, 0}};
  std::string* sinks[3] = {&result.stdout_text, &result.stderr_text, &setup_error};
  int open_pipes = 3;
  bool killed = false;
  while (open_pipes > 0) {
    int wait_ms = -1;
    if (!killed) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        ::kill(child, SIGKILL);  // init dies, and the kernel kills the whole pid namespace
        killed = result.timeout = true;
        continue;
      }
      wait_ms = static_cast<int>(left.count()) + 1;
    }
    const int ready = ::poll(fds, 3, wait_ms);
    if (ready < 0 && errno != EINTR) {
      ::kill(child, SIGKILL);
      ::waitpid(child, nullptr, 0);
      NANOCHAT_FAIL("sandbox: poll: ", std::strerror(errno));
    }
    for (int i = 0; i < 3 && ready > 0; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[4096];
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        const std::size_t keep = std::min(static_cast<std::size_t>(n), limits.output_bytes - std::min(limits.output_bytes, sinks[i]->size()));
        sinks[i]->append(buffer, keep);  // past the cap output is read and dropped, so the writer never blocks
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;
        --open_pipes;
      }
    }
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (!setup_error.empty()) NANOCHAT_FAIL(refused, "setting up the sandbox: ", setup_error);
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.passed = !result.timeout && code == 0;
  if (result.timeout) {
    result.error = cat("timed out after ", limits.timeout_seconds, " s (killed)");
  } else if (code > 128) {
    const int sig = code - 128;
    result.error = cat("killed by signal ", sig, " (", ::strsignal(sig), ")",
                       sig == SIGKILL || sig == SIGXCPU ? "; the CPU-time limit?" : "");
  } else if (code != 0) {
    result.error = last_line(result.stderr_text);
    if (result.error.empty()) result.error = cat("exit status ", code);
  }
  return result;
}

// Empty where run_python_sandboxed works on this machine (a trivial program passes with the
// default limits), else why not. Probed once per process.
inline const std::string& sandbox_refusal() {
  static const std::string reason = [] {
    try {
      const SandboxResult probe = run_python_sandboxed("pass");
      return probe.passed ? std::string{} : cat("sandbox: a program of one `pass` failed: ", probe.error);
    } catch (const Error& e) {
      return std::string(e.what());
    }
  }();
  return reason;
}

}  // namespace nanochat::eval
