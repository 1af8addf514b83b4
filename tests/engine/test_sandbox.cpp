// eval/sandbox.hpp: what a program run there cannot do (run forever, allocate a gigabyte, write
// outside its /tmp, fork without bound, reach the network), that the test process survives each,
// and that nothing runs where the kernel will not build the sandbox. Each case that needs the
// sandbox skips, saying why, on a machine that cannot build it.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "nanochat/eval/sandbox.hpp"
#include "scoped_env.hpp"
#include "skip_test.hpp"

using namespace nanochat;
namespace fs = std::filesystem;

namespace {

bool sandbox_missing() {
  if (eval::sandbox_refusal().empty()) return false;
  testing::skip_test(eval::sandbox_refusal());
  return true;
}

// Processes still running a program sandboxed by this test process (not by a test beside it):
// their stdin is the memfd named after it.
int sandboxed_processes_alive() {
  const std::string ours = "/memfd:" + eval::sandbox_memfd_name(::getpid()) + " ";
  int alive = 0;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::error_code ec;
    const fs::path stdin_target = fs::read_symlink(entry.path() / "fd" / "0", ec);
    if (!ec && stdin_target.string().starts_with(ours)) ++alive;
  }
  return alive;
}

// A directory anyone may write to, outside /tmp and reachable by the sandbox's user: the sandbox
// mounts its own /tmp over the host's, so a probe under the host's /tmp would be hidden (ENOENT)
// rather than read-only (EROFS). /var/tmp is world-searchable; the build directory may not be.
fs::path open_probe_dir() {
  for (const fs::path& parent : {fs::path("/var/tmp"), fs::current_path()}) {
    const std::string p = parent.string();
    if (p == "/tmp" || p.starts_with("/tmp/") || !fs::is_directory(parent)) continue;
    const fs::path dir = parent / ("sandbox_write_probe_" + std::to_string(::getpid()));
    std::error_code ec;
    if (fs::create_directories(dir, ec) || fs::is_directory(dir)) return dir;
  }
  FAIL("no writable directory outside /tmp for the write probe");
  return {};
}

eval::SandboxLimits quick(double seconds) {
  eval::SandboxLimits limits;
  limits.timeout_seconds = seconds;
  return limits;
}

}  // namespace

TEST_CASE("sandbox: a correct program passes, a failing one reports its exception, and the environment is empty") {
  if (sandbox_missing()) return;
  const testing::ScopedEnv secret("NANOCHAT_SANDBOX_SECRET", "hunter2");
  const auto ok = eval::run_python_sandboxed(
      "import os\ndef add(a, b):\n    return a + b\nassert add(2, 3) == 5\n"
      "assert 'NANOCHAT_SANDBOX_SECRET' not in os.environ and 'PATH' not in os.environ, dict(os.environ)\n"
      "print('cwd', os.getcwd(), 'uid', os.getuid())\n");
  CHECK_MESSAGE(ok.passed, ok.error, ok.stderr_text);
  CHECK_FALSE(ok.timeout);
  CHECK(ok.error.empty());
  CHECK(ok.stdout_text == "cwd /tmp uid " + std::to_string(eval::kSandboxUid) + "\n");
  const auto wrong = eval::run_python_sandboxed("def add(a, b):\n    return a - b\nassert add(2, 3) == 5, 'add is wrong'\n");
  CHECK_FALSE(wrong.passed);
  CHECK_FALSE(wrong.timeout);
  CHECK(wrong.error == "AssertionError: add is wrong");
  CHECK(wrong.stderr_text.find("Traceback") != std::string::npos);
  // Output past the cap is dropped, and the writer is not blocked by it.
  eval::SandboxLimits small = quick(10);
  small.output_bytes = 1000;
  const auto loud = eval::run_python_sandboxed("print('x' * 1000000)\nprint('done')\n", small);
  CHECK(loud.passed);
  CHECK(loud.stdout_text == std::string(1000, 'x'));
}

TEST_CASE("sandbox: an endless loop is killed at its timeout, with the process it started") {
  if (sandbox_missing()) return;
  const auto r = eval::run_python_sandboxed(
      "import os, time\nif os.fork() == 0:\n    time.sleep(600)\nwhile True:\n    pass\n", quick(1));
  CHECK(r.timeout);
  CHECK_FALSE(r.passed);
  CHECK(r.error == "timed out after 1 s (killed)");
  CHECK(sandboxed_processes_alive() == 0);
}

TEST_CASE("sandbox: a 1 GB allocation fails with MemoryError under the 256 MiB limit") {
  if (sandbox_missing()) return;
  const auto r = eval::run_python_sandboxed("x = bytearray(1 << 30)\n");
  CHECK_FALSE(r.passed);
  CHECK_FALSE(r.timeout);
  CHECK(r.error == "MemoryError");
  const auto fits = eval::run_python_sandboxed("x = bytearray(64 << 20)\n");
  CHECK_MESSAGE(fits.passed, fits.error);
}

TEST_CASE("sandbox: writes outside its own /tmp fail, even into a directory anyone may write") {
  if (sandbox_missing()) return;
  // A world-writable host directory, so only the read-only view of the tree can stop the write.
  const fs::path open_dir = open_probe_dir();
  fs::permissions(open_dir, fs::perms::all);
  const std::string host_tmp_name = "/tmp/nanochat_sandbox_probe_" + std::to_string(::getpid());
  const auto r = eval::run_python_sandboxed(
      "import errno, os\n"
      "open('here.txt', 'w').write('x')\n"                    // the working directory is writable
      "open('" + host_tmp_name + "', 'w').write('x')\n"       // so is its /tmp, which is not the host's
      "for path in ['" + (open_dir / "escaped.txt").string() + "', '/etc/nanochat_escaped', '/dev/shm/nanochat_escaped']:\n"
      "    try:\n"
      "        open(path, 'w').write('x')\n"
      "        raise SystemExit('wrote ' + path)\n"
      "    except OSError as e:\n"
      "        assert e.errno == errno.EROFS, (path, e)\n"
      "try:\n"
      "    os.setuid(0)\n"
      "    raise SystemExit('became root')\n"
      "except OSError:\n"
      "    pass\n");
  CHECK_MESSAGE(r.passed, r.error, r.stderr_text);
  CHECK_FALSE(fs::exists(open_dir / "escaped.txt"));
  CHECK_FALSE(fs::exists(host_tmp_name));
  CHECK_FALSE(fs::exists("/etc/nanochat_escaped"));
  fs::remove_all(open_dir);
  // A file larger than RLIMIT_FSIZE (and the /tmp tmpfs) is cut off.
  eval::SandboxLimits small = quick(10);
  small.file_bytes = 1 << 20;
  const auto big = eval::run_python_sandboxed("import signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
                                              "open('big', 'wb').write(b'x' * (2 << 20))\n", small);
  CHECK_FALSE(big.passed);
  CHECK(big.error.find("File too large") != std::string::npos);
}

TEST_CASE("sandbox: a descriptor this process holds open without O_CLOEXEC does not reach the program") {
  if (sandbox_missing()) return;
  const fs::path held = fs::current_path() / ("sandbox_held_" + std::to_string(::getpid()) + ".txt");
  const int fd = ::open(held.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0666);  // inheritable on purpose
  REQUIRE(fd >= 3);
  const auto r = eval::run_python_sandboxed(
      "import os\nfor fd in range(3, 1024):\n    try:\n        os.write(fd, b'escaped')\n"
      "        raise SystemExit('wrote to descriptor %d' % fd)\n    except OSError:\n        pass\n");
  CHECK_MESSAGE(r.passed, r.error);
  ::close(fd);
  CHECK(fs::file_size(held) == 0);
  fs::remove(held);
}

TEST_CASE("sandbox: a fork bomb is held to the process limit and dies with the sandbox") {
  if (sandbox_missing()) return;
  eval::SandboxLimits tiny = quick(5);
  tiny.max_processes = 8;  // the sandbox's init and Python count among them
  const auto counted = eval::run_python_sandboxed(
      "import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            time.sleep(600)\n"
      "            os._exit(0)\n        n += 1\nexcept OSError:\n    print(n, flush=True)\n    raise\n",
      tiny);
  CHECK_FALSE(counted.passed);
  CHECK(counted.stdout_text == "6\n");
  CHECK(counted.error.find("BlockingIOError") != std::string::npos);
  CHECK(sandboxed_processes_alive() == 0);  // the sleepers died with the namespace's init
  tiny.timeout_seconds = 2;
  const auto bomb = eval::run_python_sandboxed("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n", tiny);
  CHECK(bomb.timeout);
  CHECK(sandboxed_processes_alive() == 0);
  // The machine is still usable: this process forks, and the sandbox runs the next program.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  REQUIRE(child > 0);
  int status = -1;
  CHECK(::waitpid(child, &status, 0) == child);
  CHECK(eval::run_python_sandboxed("pass").passed);
}

TEST_CASE("sandbox: no network: connecting to a port listening on the host's loopback fails") {
  if (sandbox_missing()) return;
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  REQUIRE(listener >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(::listen(listener, 4) == 0);
  socklen_t length = sizeof address;
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  const auto r = eval::run_python_sandboxed(
      "import errno, socket\ns = socket.socket()\ntry:\n    s.connect(('127.0.0.1', " + std::to_string(ntohs(address.sin_port)) +
      "))\n    raise SystemExit('connected')\nexcept OSError as e:\n    assert e.errno == errno.ENETUNREACH, e\n");
  CHECK_MESSAGE(r.passed, r.error, r.stderr_text);
  CHECK(::accept(listener, nullptr, nullptr) < 0);  // nothing reached the host's listener
  ::close(listener);
}

TEST_CASE("sandbox: where the kernel refuses user namespaces, nothing runs and the error says why") {
  if (sandbox_missing()) return;
  // A child process in its own user namespace whose limit of nested user namespaces is 0.
  int report[2];
  REQUIRE(::pipe(report) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(report[0]);
    const std::string uid = std::to_string(::geteuid()), gid = std::to_string(::getegid());
    const auto write_file = [](const char* path, const std::string& text) {
      std::ofstream f(path);
      f << text;
      f.close();
      return f.good();
    };
    std::string message;
    if (::unshare(CLONE_NEWUSER) != 0 || !write_file("/proc/self/setgroups", "deny") ||
        !write_file("/proc/self/uid_map", "0 " + uid + " 1") || !write_file("/proc/self/gid_map", "0 " + gid + " 1") ||
        !write_file("/proc/sys/user/max_user_namespaces", "0")) {
      message = "setup failed";
    } else {
      try {
        const auto r = eval::run_python_sandboxed("open('/proc/self/cwd/ran', 'w')\n");
        message = r.passed ? "ran" : "ran and failed";
      } catch (const Error& e) {
        message = e.what();
      }
    }
    [[maybe_unused]] const ssize_t n = ::write(report[1], message.data(), message.size());
    ::_exit(0);
  }
  ::close(report[1]);
  std::string message;
  char buffer[1024];
  for (ssize_t n; (n = ::read(report[0], buffer, sizeof buffer)) > 0;) message.append(buffer, static_cast<std::size_t>(n));
  ::close(report[0]);
  ::waitpid(child, nullptr, 0);
  if (message == "setup failed") {
    testing::skip_test("this kernel will not let a test limit user namespaces in a namespace of its own");
    return;
  }
  CHECK(message.find("sandbox: code execution is refused: the kernel would not create new user, pid, network and mount "
                     "namespaces") != std::string::npos);
  CHECK(eval::run_python_sandboxed("pass").passed);  // the refusal was the child's namespace's, not ours
}
