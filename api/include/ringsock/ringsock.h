/* What ringsock adds to Winsock: naming the profile that WSAStartup brings
 * up (the only start-up change a ported program makes), and socket options
 * for spreading one port's traffic over several engine cores. */
#ifndef RINGSOCK_RINGSOCK_H
#define RINGSOCK_RINGSOCK_H

#include "winsock2.h"

RINGSOCK_BEGIN_C

/* Names the profile (a TOML file from drivers_config/) and `section.key=value`
 * overrides for the next WSAStartup that starts the stack. Without it,
 * WSAStartup reads the environment: RINGSOCK_PROFILE (the file) and
 * RINGSOCK_SET (overrides separated by ';'). Returns 0, or WSAEINVAL with
 * the reason in ringsock_startup_error() when the profile is refused, or
 * WSAEALREADY once the stack runs. The strings are copied. */
int ringsock_configure(const char* profile_path, int override_count, const char* const* overrides);

/* Why the last ringsock_configure or WSAStartup failed ("" if it did not):
 * the profile's file, key and expected value, or what EAL or the port said. */
const char* ringsock_startup_error(void);

/* How many engine cores poll the port (0 before WSAStartup). */
int ringsock_engine_count(void);

/* Run-to-completion: runs function(context) once on engine `engine`'s own
 * lcore, between its bursts, and returns when it has returned (0), or
 * WSANOTINITIALISED / WSAEINVAL. Called on that engine (from a function it
 * runs, or a poller), it runs the function in place; called on another
 * engine, it fails with WSAEWOULDBLOCK, since an engine that waited for
 * another could wait for one waiting for it. Inside, calls on sockets homed
 * on that engine execute in place: an overlapped receive that finds a datagram
 * queued, or that the engine fills at once, returns 0 (one the engine fills
 * for a port in FILE_SKIP_COMPLETION_PORT_ON_SUCCESS mode returns
 * WSA_IO_PENDING instead and completes on the port: never both); a call
 * that would block (a non-overlapped receive with nothing queued) fails with
 * WSAEWOULDBLOCK instead, since the engine it would wait for is the caller.
 * Calls that change the socket table (socket, bind, connect, closesocket,
 * an implicit bind, IP_ADD/DROP_MEMBERSHIP and IPV6_ADD/DROP_MEMBERSHIP,
 * CreateIoCompletionPort on a socket, WSACleanup) fail there with
 * WSAEWOULDBLOCK: make them from an ordinary thread.
 * Keep the function short: the engine polls nothing while it runs. */
int ringsock_run_on_engine(int engine, void (*function)(void* context), void* context);

/* Run-to-completion polling, the receive loop of a kernel-bypass program:
 * calls poll(context) on engine `engine`'s own lcore after each of the
 * engine's polls (once it has received a burst, delivered it and pushed its
 * completions), in place as ringsock_run_on_engine does, until poll returns
 * nonzero; then returns 0. The caller's thread sleeps meanwhile. Several
 * pollers (up to 8 per engine) run in the order they started. Fails with
 * WSANOTINITIALISED, WSAEINVAL (no such engine, no function),
 * WSAEWOULDBLOCK (called from an engine), WSAENOBUFS (8 pollers there
 * already), or WSAEINTR when the last WSACleanup ends it first (before it
 * closes the sockets; the engines go on for a later WSAStartup).
 * Inside, a wait never blocks, since only this engine could complete what
 * it would wait for: GetQueuedCompletionStatus[Ex] and
 * WSAWaitForMultipleEvents with nothing ready return as with a zero
 * time-out (WAIT_TIMEOUT, WSA_WAIT_TIMEOUT), an alertable SleepEx runs the
 * completion routines queued and returns, and WSAGetOverlappedResult with
 * fWait TRUE on a pending request fails with WSA_IO_INCOMPLETE. The
 * datagrams, the posted buffers and the completions then never leave the
 * engine's core.
 * The first receive made on a datagram socket from its home engine (by a
 * poller, or a function ringsock_run_on_engine runs there) gives that
 * socket's queue to the engine for the socket's life: the engine
 * then takes queued datagrams without a locked instruction, and a receive
 * from any other thread no longer takes one in its own call but is posted
 * to the engine (WSA_IO_PENDING, then it completes from there, in order).
 * Receive a socket from its engine or from threads, not both, for the
 * fastest path either way. */
int ringsock_poll_on_engine(int engine, int (*poll)(void* context), void* context);

RINGSOCK_END_C

/* SOL_SOCKET options, values outside Windows' ranges. */

/* BOOL, before bind: several datagram sockets may bind the same address and
 * port, one per engine; each receives the flows that RSS steers to its
 * engine (set its engine with SO_RINGSOCK_HOME_ENGINE). */
#define SO_RINGSOCK_PORT_SHARE 0x7301
/* int, before bind: the engine (0 .. ringsock_engine_count()-1) that owns
 * the socket, receives for it and completes its requests. Default: engine 0. */
#define SO_RINGSOCK_HOME_ENGINE 0x7302
/* int, read only: datagrams dropped because the receive queue (SO_RCVBUF)
 * was full, or because the mbuf pool ran short while the socket already
 * held 32 queued datagrams. */
#define SO_RINGSOCK_RCV_DROPS 0x7303

#endif /* RINGSOCK_RINGSOCK_H */
