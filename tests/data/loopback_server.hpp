#pragma once
// A tiny HTTP/1.1 server on 127.0.0.1 for downloader tests: serves fixed files by path, answers
// redirects, records each path's last request (its headers), and injects scripted faults per
// path. One connection at a time, "Connection: close", a bounded number of requests, and every
// socket wait has a timeout, so a test can never hang on it.

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

namespace nanochat::data::testing {

enum class Fault {
  http_500,  // "500 Internal Server Error"
  cut,       // headers promise the whole body, half is sent, then the connection closes
  corrupt,   // "200 OK" with the right length but damaged bytes
};

class LoopbackServer {
 public:
  static constexpr int kMaxRequests = 200;

  LoopbackServer() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (listener_ < 0) throw std::runtime_error("socket failed");
    int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;  // any free port
    socklen_t length = sizeof address;
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener_, 16) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      ::close(listener_);
      throw std::runtime_error("cannot listen on 127.0.0.1");
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }

  ~LoopbackServer() {
    stop_ = true;
    thread_.join();
    ::close(listener_);
  }
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::uint16_t port() const { return port_; }

  void add_file(const std::string& path, std::string body) {
    std::lock_guard lock(mutex_);
    files_[path] = std::move(body);
  }

  // Requests of path are answered "302 Found" to location (absolute, or a path on this server).
  void add_redirect(const std::string& path, std::string location) {
    std::lock_guard lock(mutex_);
    redirects_[path] = std::move(location);
  }

  // The next requests of path fail in this order; after the script, requests succeed.
  void script(const std::string& path, std::deque<Fault> faults) {
    std::lock_guard lock(mutex_);
    faults_[path] = std::move(faults);
  }

  // A path that always answers 500.
  void always_fail(const std::string& path) {
    std::lock_guard lock(mutex_);
    broken_[path] = true;
  }

  int requests(const std::string& path) {
    std::lock_guard lock(mutex_);
    return counts_[path];
  }

  // The request line and headers of the last request of path ("" if none came).
  std::string last_request(const std::string& path) {
    std::lock_guard lock(mutex_);
    return last_requests_[path];
  }

 private:
  void serve() {
    int handled = 0;
    while (!stop_ && handled < kMaxRequests) {
      pollfd waiting{listener_, POLLIN, 0};
      if (::poll(&waiting, 1, 50) <= 0) continue;
      int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) continue;
      ++handled;
      handle(client);
      ::close(client);
    }
  }

  void handle(int client) {
    std::string request;
    char buffer[4096];
    while (request.find("\r\n\r\n") == std::string::npos && request.size() < 65536) {
      pollfd readable{client, POLLIN, 0};
      if (::poll(&readable, 1, 2000) <= 0) return;
      ssize_t got = ::recv(client, buffer, sizeof buffer, 0);
      if (got <= 0) return;
      request.append(buffer, static_cast<std::size_t>(got));
    }
    // "GET /path HTTP/1.1"
    auto first_space = request.find(' ');
    auto second_space = request.find(' ', first_space + 1);
    if (first_space == std::string::npos || second_space == std::string::npos) return;
    std::string path = request.substr(first_space + 1, second_space - first_space - 1);

    std::string body;
    std::string redirect;
    bool found = false;
    bool fail = false;
    Fault fault{};
    bool faulty = false;
    {
      std::lock_guard lock(mutex_);
      ++counts_[path];
      last_requests_[path] = request.substr(0, request.find("\r\n\r\n"));
      if (auto moved = redirects_.find(path); moved != redirects_.end()) redirect = moved->second;
      if (auto file = files_.find(path); file != files_.end()) {
        found = true;
        body = file->second;
      }
      fail = broken_[path];
      if (auto script = faults_.find(path); script != faults_.end() && !script->second.empty()) {
        faulty = true;
        fault = script->second.front();
        script->second.pop_front();
      }
    }
    if (!redirect.empty()) {
      return send_all(client, "HTTP/1.1 302 Found\r\nLocation: " + redirect +
                                  "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }
    if (!found) return send_all(client, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    if (fail || (faulty && fault == Fault::http_500)) {
      return send_all(client, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }
    if (faulty && fault == Fault::corrupt) {
      for (std::size_t i = 0; i < body.size(); i += 3) body[i] = static_cast<char>(body[i] ^ 0x55);
    }
    std::string head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
    send_all(client, head);
    if (faulty && fault == Fault::cut) return send_all(client, body.substr(0, body.size() / 2));
    send_all(client, body);
  }

  static void send_all(int client, const std::string& bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      ssize_t n = ::send(client, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<std::size_t>(n);
    }
  }

  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::map<std::string, std::string> files_;
  std::map<std::string, std::deque<Fault>> faults_;
  std::map<std::string, bool> broken_;
  std::map<std::string, int> counts_;
  std::map<std::string, std::string> redirects_;
  std::map<std::string, std::string> last_requests_;
};

}  // namespace nanochat::data::testing
