/* ringsock's subset of <windows.h>: the base types with Windows' sizes
 * (DWORD, ULONG and LONG are 32 bits; u_long too), OVERLAPPED as laid out on
 * 64-bit Windows, and the kernel32 calls overlapped sockets need: completion
 * ports, SleepEx, CloseHandle, Get/SetLastError.
 *
 * A Windows program keeps its code and changes its include to
 * <ringsock/winsock2.h>, which includes this file as Windows' does. It
 * includes no DPDK, lwIP or POSIX socket header. Functions whose names libc
 * also exports are bound to ringsock_* symbols, so the rest of the process
 * (DPDK, the C library) keeps libc's. */
#ifndef RINGSOCK_WINDOWS_H
#define RINGSOCK_WINDOWS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define RINGSOCK_EXTERN_C extern "C"
#define RINGSOCK_BEGIN_C extern "C" {
#define RINGSOCK_END_C }
#else
#define RINGSOCK_EXTERN_C
#define RINGSOCK_BEGIN_C
#define RINGSOCK_END_C
#endif

/* Calls whose names libc exports too (socket, bind, recv, ...) link to
 * ringsock_<name>, leaving libc's symbol alone for everyone else. */
#define RINGSOCK_SYMBOL(name) __asm__("ringsock_" #name)

#define WINAPI
#define CALLBACK
#define PASCAL
#define FAR
#define NEAR
#define IN
#define OUT
#define OPTIONAL

typedef uint8_t BYTE;
typedef uint16_t WORD;
typedef uint32_t DWORD;
typedef int32_t LONG;
typedef uint32_t ULONG;
typedef int32_t INT;
typedef uint32_t UINT;
typedef int32_t BOOL;
typedef char CHAR;
typedef unsigned char UCHAR;
typedef UCHAR* PUCHAR;
typedef int16_t SHORT;
typedef uint16_t USHORT;
typedef uint64_t ULONG64;
typedef int64_t LONG64;
typedef uint64_t ULONGLONG;
typedef int64_t LONGLONG;
typedef uintptr_t ULONG_PTR;
typedef uintptr_t DWORD_PTR;
typedef uintptr_t UINT_PTR;
typedef intptr_t LONG_PTR;
typedef intptr_t INT_PTR;
typedef size_t SIZE_T;
typedef void VOID;
typedef void* PVOID;
typedef void* LPVOID;
typedef const void* LPCVOID;
typedef void* HANDLE;
typedef HANDLE* PHANDLE;
typedef BYTE* LPBYTE;
typedef WORD* LPWORD;
typedef DWORD* LPDWORD;
typedef DWORD* PDWORD;
typedef LONG* LPLONG;
typedef ULONG* PULONG;
typedef INT* LPINT;
typedef INT* PINT;
typedef BOOL* LPBOOL;
typedef CHAR* LPSTR;
typedef const CHAR* LPCSTR;
typedef const CHAR* PCSTR;
typedef CHAR* PSTR;
typedef ULONG_PTR* PULONG_PTR;

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

#define MAKEWORD(low, high) ((WORD)(((BYTE)((DWORD_PTR)(low) & 0xff)) | ((WORD)((BYTE)((DWORD_PTR)(high) & 0xff))) << 8))
#define LOBYTE(w) ((BYTE)(((DWORD_PTR)(w)) & 0xff))
#define HIBYTE(w) ((BYTE)((((DWORD_PTR)(w)) >> 8) & 0xff))

#define INFINITE 0xFFFFFFFFu
#define INVALID_HANDLE_VALUE ((HANDLE)(LONG_PTR)-1)

#define WAIT_OBJECT_0 0x00000000u
#define WAIT_ABANDONED 0x00000080u
#define WAIT_IO_COMPLETION 0x000000C0u
#define WAIT_TIMEOUT 258u
#define WAIT_FAILED 0xFFFFFFFFu

/* Win32 error codes that the calls here report through GetLastError. */
#define ERROR_SUCCESS 0L
#define ERROR_INVALID_HANDLE 6L
#define ERROR_NOT_ENOUGH_MEMORY 8L
#define ERROR_INVALID_PARAMETER 87L
#define ERROR_INSUFFICIENT_BUFFER 122L
#define ERROR_ABANDONED_WAIT_0 735L
#define ERROR_OPERATION_ABORTED 995L
#define ERROR_IO_INCOMPLETE 996L
#define ERROR_IO_PENDING 997L
#define ERROR_NOT_SUPPORTED 50L

/* Laid out as on 64-bit Windows: 32 bytes, hEvent at 24. For sockets the
 * provider keeps the completion status in Internal (STATUS_PENDING while the
 * request is outstanding), the byte count in InternalHigh and the flags in
 * Offset; read them with WSAGetOverlappedResult. */
typedef struct _OVERLAPPED {
    ULONG_PTR Internal;
    ULONG_PTR InternalHigh;
    /* Anonymous, as Windows' compilers allow; __extension__ keeps
     * -pedantic quiet about the anonymous struct in C++. */
    __extension__ union {
        __extension__ struct {
            DWORD Offset;
            DWORD OffsetHigh;
        };
        PVOID Pointer;
    };
    HANDLE hEvent;
} OVERLAPPED, *LPOVERLAPPED;

#define STATUS_PENDING ((DWORD)0x00000103L)

/* Names an extension function (WSAIoctl SIO_GET_EXTENSION_FUNCTION_POINTER). */
typedef struct _GUID {
    DWORD Data1; /* unsigned long on Windows: 32 bits */
    WORD Data2;
    WORD Data3;
    BYTE Data4[8];
} GUID, *LPGUID;

typedef struct _OVERLAPPED_ENTRY {
    ULONG_PTR lpCompletionKey;
    LPOVERLAPPED lpOverlapped;
    ULONG_PTR Internal;
    DWORD dwNumberOfBytesTransferred;
} OVERLAPPED_ENTRY, *LPOVERLAPPED_ENTRY;

/* SetFileCompletionNotificationModes */
#define FILE_SKIP_COMPLETION_PORT_ON_SUCCESS 0x1
#define FILE_SKIP_SET_EVENT_ON_HANDLE 0x2

RINGSOCK_BEGIN_C

DWORD WINAPI GetLastError(void);
void WINAPI SetLastError(DWORD dwErrCode);

/* Closes an I/O completion port (sockets close with closesocket, events
 * with WSACloseEvent). */
BOOL WINAPI CloseHandle(HANDLE hObject);

/* Waits up to dwMilliseconds; when bAlertable, runs the calling thread's
 * queued completion routines and returns WAIT_IO_COMPLETION. Returns 0 when
 * the time passed. */
DWORD WINAPI SleepEx(DWORD dwMilliseconds, BOOL bAlertable);

/* FileHandle INVALID_HANDLE_VALUE with ExistingCompletionPort NULL creates a
 * port; a SOCKET (cast to HANDLE) with an existing port associates the
 * socket with it under CompletionKey. */
HANDLE WINAPI CreateIoCompletionPort(HANDLE FileHandle, HANDLE ExistingCompletionPort, ULONG_PTR CompletionKey,
                                     DWORD NumberOfConcurrentThreads);
BOOL WINAPI GetQueuedCompletionStatus(HANDLE CompletionPort, LPDWORD lpNumberOfBytesTransferred,
                                      PULONG_PTR lpCompletionKey, LPOVERLAPPED* lpOverlapped, DWORD dwMilliseconds);
BOOL WINAPI GetQueuedCompletionStatusEx(HANDLE CompletionPort, LPOVERLAPPED_ENTRY lpCompletionPortEntries,
                                        ULONG ulCount, PULONG ulNumEntriesRemoved, DWORD dwMilliseconds,
                                        BOOL fAlertable);
BOOL WINAPI PostQueuedCompletionStatus(HANDLE CompletionPort, DWORD dwNumberOfBytesTransferred,
                                       ULONG_PTR dwCompletionKey, LPOVERLAPPED lpOverlapped);
BOOL WINAPI SetFileCompletionNotificationModes(HANDLE FileHandle, UCHAR Flags);

RINGSOCK_END_C

#endif /* RINGSOCK_WINDOWS_H */
