"""`delay_proxy.py DELAY_MS HOST PORT COUNT_FILE`: an ssh ProxyCommand that adds DELAY_MS to each direction of
one TCP connection (round trip + 2 x DELAY_MS) and keeps the number of bytes sent to the node in COUNT_FILE.

Why: this machine's kernel has no netem qdisc, so the latency of a real network is added in user space on
loopback. Each chunk is held until DELAY_MS after it arrived, not DELAY_MS after the previous one, so the delay
adds latency without throttling a transfer.
"""
import os
import queue
import socket
import sys
import threading
import time

delay = float(sys.argv[1]) / 1000.0
sock = socket.create_connection((sys.argv[2], int(sys.argv[3])))
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
count_fd = os.open(sys.argv[4], os.O_WRONLY | os.O_CREAT, 0o600)
sent = 0


def pump(read, write, on_chunk=None):
    """Reads chunks, stamps them, and a second thread writes each one when its time has come."""
    q = queue.Queue()

    def writer():
        while True:
            due, data = q.get()
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            if not data:
                break
            write(data)
            if on_chunk:
                on_chunk(len(data))

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    while True:
        data = read()
        q.put((time.monotonic() + delay, data))
        if not data:
            break
    t.join()


def count(n):
    global sent
    sent += n
    os.pwrite(count_fd, f"{sent:<20}".encode(), 0)


def to_node():
    pump(lambda: os.read(0, 65536), sock.sendall, count)
    sock.shutdown(socket.SHUT_WR)


def to_controller():
    def write(data):
        view = memoryview(data)
        while view:
            view = view[os.write(1, view):]
    pump(lambda: sock.recv(65536), write)


threading.Thread(target=to_node, daemon=True).start()
to_controller()
