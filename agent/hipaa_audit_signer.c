/*-------------------------------------------------------------------------
 *
 * hipaa_audit_signer.c
 *	  The signing agent: a small program, run under an OS account of its
 *	  own, that holds the Ed25519 key signing hipaa_audit's checkpoints and
 *	  purge receipts, and signs note bodies asked for over a Unix socket.
 *
 * Why a separate process: a key file the database server can read is a key
 * a superuser can read (pg_read_file, COPY ... TO PROGRAM) and sign anything
 * with, for instance a purge receipt disguising the deletion of recent rows.
 * Here the key is read once, at start, by an account the server does not
 * run as, and stays in this process (not dumpable, no core files).
 *
 * Terms: a "request" is one header line and, for "sign", a body; the
 * "answer" is one line; one request per connection.  The "log" is a file
 * of this account to which every signed body is appended (with time, peer
 * and signature) before the signature is handed out, and every refusal
 * (with the SHA-256 of what was refused): the record a superuser of the
 * database cannot rewrite.
 *
 * Protocol, version 1 (docs/checkpoints.md, "The signing agent"):
 *
 *	request:  "hipaa_audit-sign 1 key\n"
 *			  "hipaa_audit-sign 1 sign <n>\n" followed by exactly n body bytes
 *	answer:   "ok <verifier key>\n"										(key)
 *			  "ok <verifier key> <base64(key ID || signature)>\n"	(sign)
 *			  "error <code> <text>\n"
 *
 * The agent signs only bodies that look like what the extension writes:
 * at most AGENT_MAX_BODY bytes of newline-terminated lines, no control
 * characters and no empty line; the origin line hipaa_audit/<system
 * identifier>/<table identity>, then "checkpoint v1" or "purge v1" (or,
 * for a tlog-checkpoint, the tree size, the base64 root and "checkpoint
 * v2"), then "table ..." and further "<keyword> <value>" lines.  With -s,
 * only notes of that database cluster.
 *
 * This is the only file of the project, besides src/crypto.c, that
 * includes OpenSSL; it is not part of the server's library.
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE				/* struct ucred */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#define AGENT_MAGIC			"hipaa_audit-sign"
#define AGENT_VERSION		1
#define AGENT_MAX_HEADER	64		/* the longest request line, newline included */
#define AGENT_MAX_BODY		65536	/* as src/signer.c */
#define AGENT_MAX_NAME		255
#define KEY_LEN				32
#define SIG_LEN				64

static const char *progname = "hipaa_audit_signer";

/* The key, read once. */
static EVP_PKEY *signing_key = NULL;
static unsigned char public_key[KEY_LEN];
static unsigned char key_id[4];
static char verifier_key[AGENT_MAX_NAME + 80];
static const char *key_name = NULL;

/* Options. */
static const char *log_path = NULL;
static int	log_fd = -1;
static uid_t allowed_uid;
static const char *system_id = NULL;
static int	timeout_ms = 5000;

static volatile sig_atomic_t got_stop = 0;
static volatile sig_atomic_t got_hup = 0;

static void die(const char *fmt,...) __attribute__((format(printf, 1, 2), noreturn));
static void note(const char *fmt,...) __attribute__((format(printf, 1, 2)));

static void
die(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Diagnostics of the running agent (systemd's journal reads stderr). */
static void
note(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
usage(void)
{
	fprintf(stderr,
			"Usage: %s -k KEYFILE -n NAME -l LOGFILE -u USER [-S SOCKET] [-s SYSTEM_ID] [-t SECONDS] [-m MODE]\n"
			"       %s -k KEYFILE -n NAME -p\n"
			"\n"
			"  -k KEYFILE   Ed25519 private key, PKCS#8 PEM, mode 600 or stricter\n"
			"  -n NAME      signer name (as hipaa_audit.signer_name)\n"
			"  -l LOGFILE   append a record of every signed note and every refusal here\n"
			"  -u USER      the only account allowed to connect (the server's, e.g. postgres)\n"
			"  -S SOCKET    listen on this Unix socket (not needed under systemd socket activation)\n"
			"  -s SYSTEM_ID sign notes of this database cluster only\n"
			"  -t SECONDS   time a client has to send its request (default 5)\n"
			"  -m MODE      permissions of the socket (octal, default 0660)\n"
			"  -p           print the verifier key and exit\n",
			progname, progname);
	exit(2);
}

static void
on_stop(int sig)
{
	(void) sig;
	got_stop = 1;
}

static void
on_hup(int sig)
{
	(void) sig;
	got_hup = 1;
}

/* ----------------------------------------------------------------
 * Small helpers
 * ----------------------------------------------------------------
 */

static char *
base64(const unsigned char *data, int len, char *out)
{
	EVP_EncodeBlock((unsigned char *) out, data, len);
	return out;
}

static void
hex(const unsigned char *data, int len, char *out)
{
	for (int i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", data[i]);
	out[2 * len] = '\0';
}

static bool
sha256(const void *data, size_t len, unsigned char out[32])
{
	unsigned int outlen = 0;

	return EVP_Digest(data, len, out, &outlen, EVP_sha256(), NULL) == 1 && outlen == 32;
}

static bool
valid_name(const char *name)
{
	size_t		len = strlen(name);

	if (len == 0 || len > AGENT_MAX_NAME)
		return false;
	for (const char *p = name; *p; p++)
		if ((unsigned char) *p <= ' ' || (unsigned char) *p >= 0x7f || *p == '+')
			return false;
	return true;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ----------------------------------------------------------------
 * The key
 * ----------------------------------------------------------------
 */

static void
load_key(const char *path)
{
	struct stat st;
	FILE	   *f;
	size_t		publen = KEY_LEN;
	unsigned char buf[AGENT_MAX_NAME + 2 + KEY_LEN];
	unsigned char h[32];
	size_t		nlen = strlen(key_name);
	char		b64[64];
	char		idhex[9];

	f = fopen(path, "r");
	if (f == NULL)
		die("could not open the key file \"%s\": %s", path, strerror(errno));
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
		die("the key file \"%s\" is not a regular file", path);
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		die("the key file \"%s\" is accessible by group or others (mode %04o); run chmod 600 on it",
			path, (unsigned int) (st.st_mode & 07777));
	signing_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	ERR_clear_error();
	if (signing_key == NULL)
		die("the key file \"%s\" does not hold a PEM private key", path);
	if (EVP_PKEY_get_base_id(signing_key) != EVP_PKEY_ED25519)
		die("the key file \"%s\" holds a key of the wrong type (Ed25519 expected)", path);
	if (EVP_PKEY_get_raw_public_key(signing_key, public_key, &publen) != 1 || publen != KEY_LEN)
		die("could not read the public half of the key");

	/* C2SP key ID: the first 4 bytes of SHA-256(name || 0x0A || 0x01 || key). */
	memcpy(buf, key_name, nlen);
	buf[nlen] = '\n';
	buf[nlen + 1] = 0x01;
	memcpy(buf + nlen + 2, public_key, KEY_LEN);
	if (!sha256(buf, nlen + 2 + KEY_LEN, h))
		die("SHA-256 failed");
	memcpy(key_id, h, 4);

	buf[0] = 0x01;
	memcpy(buf + 1, public_key, KEY_LEN);
	hex(key_id, 4, idhex);
	snprintf(verifier_key, sizeof(verifier_key), "%s+%s+%s", key_name, idhex,
			 base64(buf, 1 + KEY_LEN, b64));
}

/* ----------------------------------------------------------------
 * What the agent agrees to sign
 * ----------------------------------------------------------------
 */

static bool
all_digits(const char *p, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	return true;
}

static bool
lower_uuid(const char *p, size_t len)
{
	if (len != 36)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (p[i] != '-')
				return false;
		}
		else if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return false;
	}
	return true;
}

/* 44 characters of standard base64 for 32 bytes: 43, then one of AEIMQUYcgkosw048, then '='. */
static bool
root_line(const char *p, size_t len)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	if (len != 44 || p[43] != '=')
		return false;
	for (size_t i = 0; i < 43; i++)
		if (p[i] == '\0' || strchr(b64, p[i]) == NULL)
			return false;
	return ((strchr(b64, p[42]) - b64) & 3) == 0;
}

/*
 * NULL if body (len bytes) is a hipaa_audit checkpoint or purge-receipt
 * body this agent signs; otherwise why not.  *kind is set on success.
 */
static const char *
check_body(const char *body, size_t len, const char **kind)
{
	const char *line;
	const char *end = body + len;
	int			lineno = 0;
	bool		tree = false;

	if (len == 0 || body[len - 1] != '\n')
		return "the body does not end with a newline";
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) body[i];

		if ((c < 0x20 && c != '\n') || c == 0x7f)
			return "the body contains a control character";
		if (c == '\n' && (i == 0 || body[i - 1] == '\n'))
			return "the body contains an empty line";
	}

	for (line = body; line < end; lineno++)
	{
		const char *eol = memchr(line, '\n', end - line);
		size_t		llen = eol - line;

		if (lineno == 0)
		{
			/* hipaa_audit/<system identifier>/<table identity> */
			const char *slash;

			if (llen < 12 || memcmp(line, "hipaa_audit/", 12) != 0)
				return "the body is not a hipaa_audit note (origin line)";
			slash = memchr(line + 12, '/', llen - 12);
			if (slash == NULL || !all_digits(line + 12, slash - line - 12) ||
				slash - line - 12 > 20 || !lower_uuid(slash + 1, eol - slash - 1))
				return "the origin line is not hipaa_audit/<system identifier>/<uuid>";
			if (system_id != NULL &&
				((size_t) (slash - line - 12) != strlen(system_id) ||
				 memcmp(line + 12, system_id, slash - line - 12) != 0))
				return "the note is of another database cluster";
		}
		else if (lineno == 1 && llen == 13 && memcmp(line, "checkpoint v1", 13) == 0)
			*kind = "checkpoint";
		else if (lineno == 1 && llen == 8 && memcmp(line, "purge v1", 8) == 0)
			*kind = "purge";
		else if (lineno == 1)
		{
			/* A tlog-checkpoint: tree size, base64 root, "checkpoint v2". */
			if (!all_digits(line, llen) || llen > 19 || (llen > 1 && line[0] == '0'))
				return "the body is neither a checkpoint nor a purge receipt (line 2)";
			tree = true;
		}
		else if (tree && lineno == 2)
		{
			if (!root_line(line, llen))
				return "the third line of a checkpoint v2 body is not a base64 SHA-256 root";
		}
		else if (tree && lineno == 3)
		{
			if (!(llen == 13 && memcmp(line, "checkpoint v2", 13) == 0))
				return "the fourth line of a tree checkpoint body is not \"checkpoint v2\"";
			*kind = "checkpoint";
		}
		else
		{
			/* "<keyword> <value>", the first of them "table ..." */
			size_t		k = 0;

			while (k < llen && ((line[k] >= 'a' && line[k] <= 'z') || (k > 0 && line[k] == '-')))
				k++;
			if (k == 0 || k + 1 >= llen || line[k] != ' ')
				return "a line of the body is not \"<keyword> <value>\"";
			if (lineno == (tree ? 4 : 2) && !(k == 5 && memcmp(line, "table", 5) == 0))
				return "the line after the kind of note is not the table line";
		}
		line = eol + 1;
	}
	if (lineno < (tree ? 5 : 3) || *kind == NULL)
		return "the body is too short";
	return NULL;
}

/* ----------------------------------------------------------------
 * The log
 * ----------------------------------------------------------------
 */

static void
open_log(void)
{
	int			fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	if (fd < 0)
	{
		if (log_fd < 0)
			die("could not open the log file \"%s\": %s", log_path, strerror(errno));
		note("could not reopen the log file \"%s\": %s; keeping the old one",
			 log_path, strerror(errno));
		return;
	}
	if (log_fd >= 0)
		close(log_fd);
	log_fd = fd;
}

/* Append one record durably; false if it could not be written. */
static bool
append_log(const char *rec, size_t len)
{
	size_t		done = 0;

	while (done < len)
	{
		ssize_t		n = write(log_fd, rec + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			note("could not write the log file \"%s\": %s", log_path, strerror(errno));
			return false;
		}
		done += n;
	}
	if (fsync(log_fd) != 0)
	{
		note("could not fsync the log file \"%s\": %s", log_path, strerror(errno));
		return false;
	}
	return true;
}

static void
timestamp(char *out, size_t size)
{
	struct timeval tv;
	struct tm	tm;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec, (long) tv.tv_usec);
}

/*
 * "<time> signed <kind> sha256=<hex> peer_uid=<n> peer_pid=<n> bytes=<n>
 *  sig=<base64>", then each body line indented by two spaces.
 */
static bool
log_signed(const char *kind, const char *body, size_t len, const char *sig64,
		   const struct ucred *peer)
{
	size_t		cap = len * 2 + 1024;	/* body lines indented; header line */
	char	   *rec = malloc(cap);
	char		ts[40];
	unsigned char h[32];
	char		hh[65];
	size_t		n;
	bool		ok;

	if (rec == NULL || !sha256(body, len, h))
	{
		free(rec);
		return false;
	}
	hex(h, 32, hh);
	timestamp(ts, sizeof(ts));
	n = (size_t) snprintf(rec, cap, "%s signed %s sha256=%s peer_uid=%u peer_pid=%d bytes=%zu key=%s sig=%s\n",
				 ts, kind, hh, (unsigned int) peer->uid, (int) peer->pid, len,
				 verifier_key, sig64);
	if (n >= 1024)
	{
		free(rec);
		return false;
	}
	for (size_t i = 0; i < len; i++)
	{
		if (i == 0 || body[i - 1] == '\n')
		{
			rec[n++] = ' ';
			rec[n++] = ' ';
		}
		rec[n++] = body[i];
	}
	ok = append_log(rec, n);
	free(rec);
	return ok;
}

static void
log_refused(const char *code, const char *why, const char *body, size_t len,
			const struct ucred *peer)
{
	char		rec[512];
	char		ts[40];
	unsigned char h[32];
	char		hh[65] = "-";
	int			n;

	if (body != NULL && sha256(body, len, h))
		hex(h, 32, hh);
	timestamp(ts, sizeof(ts));
	n = snprintf(rec, sizeof(rec), "%s refused %s sha256=%s peer_uid=%u peer_pid=%d bytes=%zu reason=%s\n",
				 ts, code, hh, (unsigned int) peer->uid, (int) peer->pid, len, why);
	if (n > 0 && (size_t) n < sizeof(rec))
		(void) append_log(rec, n);
}

/* ----------------------------------------------------------------
 * One connection
 * ----------------------------------------------------------------
 */

static void
answer(int fd, const char *line)
{
	size_t		len = strlen(line);
	size_t		done = 0;
	int64_t		deadline = now_ms() + timeout_ms;

	while (done < len)
	{
		ssize_t		n = send(fd, line + done, len - done, MSG_NOSIGNAL);

		if (n > 0)
			done += n;
		else if (n < 0 && (errno == EAGAIN || errno == EINTR))
		{
			struct pollfd pfd = {fd, POLLOUT, 0};
			int64_t		left = deadline - now_ms();

			if (left <= 0 || (poll(&pfd, 1, (int) left) < 0 && errno != EINTR))
				return;
		}
		else
			return;
	}
}

static void
refuse(int fd, const char *code, const char *why, const char *body, size_t len,
	   const struct ucred *peer)
{
	char		line[256];

	log_refused(code, why, body, len, peer);
	snprintf(line, sizeof(line), "error %s %s\n", code, why);
	answer(fd, line);
}

/*
 * Read until want bytes are in buf, or (want == 0) until a newline within
 * cap bytes.  Returns the bytes held, or -1 on timeout, EOF or error.
 */
static ssize_t
read_until(int fd, char *buf, size_t have, size_t cap, size_t want, int64_t deadline)
{
	while (want == 0 ? memchr(buf, '\n', have) == NULL : have < want)
	{
		ssize_t		n;

		if (have >= cap)
			return -1;
		n = recv(fd, buf + have, cap - have, 0);
		if (n > 0)
			have += n;
		else if (n == 0)
			return -1;
		else if (errno == EAGAIN || errno == EINTR)
		{
			struct pollfd pfd = {fd, POLLIN, 0};
			int64_t		left = deadline - now_ms();

			if (got_stop || left <= 0)
				return -1;
			if (poll(&pfd, 1, (int) left) < 0 && errno != EINTR)
				return -1;
		}
		else
			return -1;
	}
	return have;
}

static void
serve(int fd)
{
	static char buf[AGENT_MAX_HEADER + AGENT_MAX_BODY];
	struct ucred peer;
	socklen_t	plen = sizeof(peer);
	int64_t		deadline = now_ms() + timeout_ms;
	ssize_t		have;
	char	   *nl;
	size_t		hlen;
	char		cmd[8];
	char		tail;
	int			version;
	unsigned long blen = 0;
	int			nf;
	const char *why;
	const char *kind = NULL;
	EVP_MD_CTX *ctx;
	unsigned char sigblob[4 + SIG_LEN];
	size_t		siglen = SIG_LEN;
	char		sig64[128];
	char		line[AGENT_MAX_NAME + 256];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &plen) != 0)
	{
		note("could not read the peer's credentials: %s", strerror(errno));
		return;
	}
	if (peer.uid != allowed_uid)
	{
		refuse(fd, "peer", "this account may not use the agent", NULL, 0, &peer);
		return;
	}
	(void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

	have = read_until(fd, buf, 0, AGENT_MAX_HEADER, 0, deadline);
	if (have < 0)
	{
		refuse(fd, "request", "no request line within the time or size limit", NULL, 0, &peer);
		return;
	}
	nl = memchr(buf, '\n', have);
	hlen = nl - buf + 1;
	*nl = '\0';
	/* "hipaa_audit-sign <version> <command> [<length>]" */
	if (strncmp(buf, AGENT_MAGIC " ", strlen(AGENT_MAGIC) + 1) != 0 ||
		sscanf(buf + strlen(AGENT_MAGIC) + 1, "%d", &version) != 1)
	{
		refuse(fd, "request", "not a hipaa_audit-sign request", NULL, 0, &peer);
		return;
	}
	if (version != AGENT_VERSION)
	{
		refuse(fd, "version", "this agent speaks protocol version 1", NULL, 0, &peer);
		return;
	}
	if (strcmp(buf, AGENT_MAGIC " 1 key") == 0)
	{
		snprintf(line, sizeof(line), "ok %s\n", verifier_key);
		answer(fd, line);
		return;
	}
	nf = sscanf(buf, AGENT_MAGIC " 1 %4s %lu%c", cmd, &blen, &tail);
	if (nf != 2 || strcmp(cmd, "sign") != 0 ||
		strspn(buf + strlen(AGENT_MAGIC " 1 sign "), "0123456789") !=
		strlen(buf + strlen(AGENT_MAGIC " 1 sign ")) ||
		buf[strlen(AGENT_MAGIC " 1 sign ")] == '0')
	{
		refuse(fd, "request", "the request is neither \"key\" nor \"sign <length>\"", NULL, 0, &peer);
		return;
	}
	if (blen > AGENT_MAX_BODY)
	{
		refuse(fd, "too_large", "the body is longer than 65536 bytes", NULL, blen, &peer);
		return;
	}
	have = read_until(fd, buf, have, hlen + blen, hlen + blen, deadline);
	if (have < 0)
	{
		refuse(fd, "request", "the body did not arrive within the time limit", NULL, blen, &peer);
		return;
	}
	kind = NULL;
	why = check_body(buf + hlen, blen, &kind);
	if (why != NULL)
	{
		refuse(fd, "refused", why, buf + hlen, blen, &peer);
		return;
	}

	memcpy(sigblob, key_id, 4);
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL ||
		EVP_DigestSignInit(ctx, NULL, NULL, NULL, signing_key) != 1 ||
		EVP_DigestSign(ctx, sigblob + 4, &siglen, (unsigned char *) buf + hlen, blen) != 1 ||
		siglen != SIG_LEN)
	{
		EVP_MD_CTX_free(ctx);
		ERR_clear_error();
		refuse(fd, "internal", "signing failed", buf + hlen, blen, &peer);
		return;
	}
	EVP_MD_CTX_free(ctx);
	base64(sigblob, sizeof(sigblob), sig64);

	/* No signature leaves the agent without its record. */
	if (!log_signed(kind, buf + hlen, blen, sig64, &peer))
	{
		answer(fd, "error log could not write the agent's log; nothing signed\n");
		return;
	}
	snprintf(line, sizeof(line), "ok %s %s\n", verifier_key, sig64);
	answer(fd, line);
}

/* ----------------------------------------------------------------
 * Start
 * ----------------------------------------------------------------
 */

static int
listen_socket(const char *path, mode_t mode, bool *bound)
{
	const char *pid = getenv("LISTEN_PID");
	const char *fds = getenv("LISTEN_FDS");
	struct sockaddr_un addr;
	struct stat st;
	int			fd;

	/* systemd socket activation: one socket, on descriptor 3. */
	if (pid != NULL && fds != NULL && strtol(pid, NULL, 10) == (long) getpid())
	{
		if (strcmp(fds, "1") != 0)
			die("expected one socket from systemd, got LISTEN_FDS=%s", fds);
		*bound = false;
		return 3;
	}
	if (path == NULL)
		die("no socket: give -S SOCKET or run under systemd socket activation");
	if (strlen(path) >= sizeof(addr.sun_path))
		die("the socket path is longer than %zu bytes", sizeof(addr.sun_path) - 1);
	if (lstat(path, &st) == 0)
	{
		if (!S_ISSOCK(st.st_mode))
			die("\"%s\" exists and is not a socket", path);
		unlink(path);			/* a previous run's */
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("could not create a socket: %s", strerror(errno));
	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	strcpy(addr.sun_path, path);
	umask(0177);
	if (bind(fd, (struct sockaddr *) &addr, sizeof(addr)) != 0)
		die("could not bind \"%s\": %s", path, strerror(errno));
	if (chmod(path, mode) != 0)
		die("could not chmod \"%s\": %s", path, strerror(errno));
	if (listen(fd, 16) != 0)
		die("could not listen on \"%s\": %s", path, strerror(errno));
	*bound = true;
	return fd;
}

int
main(int argc, char **argv)
{
	const char *key_path = NULL;
	const char *socket_path = NULL;
	const char *user = NULL;
	mode_t		mode = 0660;
	bool		print_key = false;
	bool		bound;
	int			lsock;
	int			c;
	struct rlimit nocore = {0, 0};
	struct sigaction sa;

	while ((c = getopt(argc, argv, "k:n:l:u:S:s:t:m:p")) != -1)
	{
		switch (c)
		{
			case 'k':
				key_path = optarg;
				break;
			case 'n':
				key_name = optarg;
				break;
			case 'l':
				log_path = optarg;
				break;
			case 'u':
				user = optarg;
				break;
			case 'S':
				socket_path = optarg;
				break;
			case 's':
				if (!all_digits(optarg, strlen(optarg)) || strlen(optarg) > 20)
					die("-s takes a database system identifier (digits)");
				system_id = optarg;
				break;
			case 't':
				timeout_ms = atoi(optarg) * 1000;
				if (timeout_ms < 1000 || timeout_ms > 600000)
					die("-t takes 1 to 600 seconds");
				break;
			case 'm':
				{
					char	   *end;

					mode = (mode_t) strtol(optarg, &end, 8);
					if (*optarg == '\0' || *end != '\0')
						die("-m takes octal permissions such as 0660");
				}
				if ((mode & ~0777) != 0)
					die("-m takes octal permissions such as 0660");
				break;
			case 'p':
				print_key = true;
				break;
			default:
				usage();
		}
	}
	if (optind != argc || key_path == NULL || key_name == NULL)
		usage();
	if (!valid_name(key_name))
		die("the signer name must be 1 to %d printable characters without spaces or \"+\"",
			AGENT_MAX_NAME);

	/* Nobody, the same account included, reads this process's memory. */
	(void) setrlimit(RLIMIT_CORE, &nocore);
	(void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

	if (geteuid() == 0)
		die("refusing to run as root; run as an account of its own");
	load_key(key_path);
	if (print_key)
	{
		printf("%s\n", verifier_key);
		return 0;
	}
	if (log_path == NULL || user == NULL)
		usage();
	{
		struct passwd *pw = getpwnam(user);
		char	   *end;
		unsigned long uid = strtoul(user, &end, 10);

		if (pw != NULL)
			allowed_uid = pw->pw_uid;
		else if (*user != '\0' && *end == '\0' && uid <= UINT_MAX)
			allowed_uid = (uid_t) uid;
		else
			die("no such user \"%s\"", user);
	}
	open_log();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;	/* no SA_RESTART: accept() returns EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	lsock = listen_socket(socket_path, mode, &bound);
	note("signing as %s for uid %u", verifier_key, (unsigned int) allowed_uid);

	/*
	 * One connection at a time: signing takes microseconds, and each
	 * connection is bounded by the timeout.
	 */
	while (!got_stop)
	{
		int			fd = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);

		if (got_hup)
		{
			got_hup = 0;
			open_log();
		}
		if (fd < 0)
		{
			if (errno != EINTR && errno != ECONNABORTED)
			{
				note("accept failed: %s", strerror(errno));
				sleep(1);
			}
			continue;
		}
		serve(fd);
		close(fd);
	}
	if (bound)
		unlink(socket_path);
	EVP_PKEY_free(signing_key);
	return 0;
}
