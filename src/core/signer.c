/*-------------------------------------------------------------------------
 *
 * signer.c
 *	  Signing through the signing agent: the server's side of the protocol
 *	  of agent/hipaa_audit_signer.c.
 *	  Layer core/ (docs/architecture.md).
 *
 * Terms: the "agent" is a process under an OS account of its own that
 * holds the Ed25519 signing key and listens on the Unix socket named by
 * hipaa_audit.signing_agent; the server never reads that key, so a
 * superuser cannot read it either (pg_read_file reads whatever the
 * server's account can).  A "request" asks for the agent's verifier key or
 * for the signature of a note body; the "answer" is one line
 * (docs/checkpoints.md, "The signing agent").
 *
 * Nothing the agent answers is taken on trust: its key ID must match its
 * name and key, its name must be hipaa_audit.signer_name, and its
 * signature must verify over the body before the note is used.  Waiting on
 * the agent is bounded by AGENT_TIMEOUT_MS and interruptible (cancel,
 * terminate, postmaster death); every failure is an ERROR, so the caller
 * stores nothing.  The socket path is superuser-only: it goes to the
 * server log, never to the client.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

char	   *ha_signing_agent = NULL;

/* Who signs otherwise: the key file, and the name in every signature line. */
char	   *ha_signing_key_file = NULL;
char	   *ha_signer_name = NULL;

#define AGENT_MAGIC			"hipaa_audit-sign 1"
#define AGENT_TIMEOUT_MS	10000	/* connect, send and answer, together */
#define AGENT_MAX_BODY		65536	/* as the agent */
#define AGENT_MAX_ANSWER	1024
#define AGENT_MAX_NAME		255

/* GUC check hook for hipaa_audit.signing_agent. */
bool
HaCheckSigningAgent(char **newval, void **extra pg_attribute_unused(),
					GucSource source pg_attribute_unused())
{
	struct sockaddr_un addr;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (!is_absolute_path(*newval))
	{
		GUC_check_errdetail("The signing agent's socket must be an absolute path.");
		return false;
	}
	if (strlen(*newval) >= sizeof(addr.sun_path))
	{
		GUC_check_errdetail("A Unix socket path is at most %d bytes long.",
							(int) sizeof(addr.sun_path) - 1);
		return false;
	}
	return true;
}

/*
 * Whether signatures come from the agent.  Both a key file and an agent
 * configured is refused: which key signs must never be a guess.
 */
bool
HaUseSigningAgent(void)
{
	if (ha_signing_agent == NULL || ha_signing_agent[0] == '\0')
		return false;
	if (ha_signing_key_file != NULL && ha_signing_key_file[0] != '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("both hipaa_audit.signing_key_file and hipaa_audit.signing_agent are set"),
				 errdetail("Either the server reads a key file or the signing agent signs, not both."),
				 errhint("Set hipaa_audit.signing_key_file to '' when using the signing agent, and reload.")));
	return true;
}

static void
AgentTimedOut(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_CONNECTION_FAILURE),
			 errmsg("the signing agent did not answer within %d seconds",
					AGENT_TIMEOUT_MS / 1000),
			 errdetail_log("hipaa_audit.signing_agent is \"%s\".", ha_signing_agent),
			 errhint("Check the signing agent; nothing was signed or stored.")));
}

/* Wait for the socket (or just for time), interruptibly, until deadline. */
static void
AgentWait(pgsocket sock, int events, TimestampTz deadline)
{
	long		ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
	int			rc;

	if (ms <= 0)
		AgentTimedOut();
	rc = WaitLatchOrSocket(MyLatch,
						   WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH | events,
						   sock, ms, PG_WAIT_EXTENSION);
	if (rc & WL_LATCH_SET)
		ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

static void
AgentConnectFailed(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
			 errmsg("could not connect to the signing agent: %m"),
			 errdetail_log("hipaa_audit.signing_agent is \"%s\".", ha_signing_agent),
			 errhint("Check that the signing agent is running and lets the server's account connect; nothing was signed or stored.")));
}

/*
 * Send one request and return the agent's answer line, without its
 * newline.  The connection is closed on every path, errors included.
 */
static char *
AgentExchange(const char *request, size_t reqlen)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   AGENT_TIMEOUT_MS);
	volatile pgsocket sock = PGINVALID_SOCKET;
	char	   *answer = palloc(AGENT_MAX_ANSWER + 1);

	PG_TRY();
	{
		struct sockaddr_un addr;
		size_t		sent = 0;
		size_t		have = 0;

		memset(&addr, 0, sizeof(addr));
		addr.sun_family = AF_UNIX;
		strlcpy(addr.sun_path, ha_signing_agent, sizeof(addr.sun_path));
		sock = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (sock == PGINVALID_SOCKET)
			AgentConnectFailed();
		/* A full backlog answers EAGAIN: the agent is busy; try again. */
		while (connect(sock, (struct sockaddr *) &addr, sizeof(addr)) != 0)
		{
			if (errno == EINTR)
				continue;
			if (errno == EINPROGRESS)
			{
				int			err = 0;
				socklen_t	len = sizeof(err);

				AgentWait(sock, WL_SOCKET_WRITEABLE, deadline);
				if (getsockopt(sock, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
					AgentConnectFailed();
				if (err == 0)
					break;
				errno = err;
				AgentConnectFailed();
			}
			if (errno != EAGAIN)
				AgentConnectFailed();
			AgentWait(PGINVALID_SOCKET, 0, Min(deadline,
											   TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 10)));
			if (GetCurrentTimestamp() >= deadline)
				AgentTimedOut();
		}

		while (sent < reqlen)
		{
			ssize_t		n = send(sock, request + sent, reqlen - sent, MSG_NOSIGNAL);

			if (n > 0)
				sent += n;
			else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
				AgentWait(sock, WL_SOCKET_WRITEABLE, deadline);
			else
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("could not send the request to the signing agent: %m"),
						 errdetail_log("hipaa_audit.signing_agent is \"%s\".", ha_signing_agent),
						 errhint("Check the signing agent's log; nothing was signed or stored.")));
		}

		/* One line, then the agent closes. */
		while (memchr(answer, '\n', have) == NULL)
		{
			ssize_t		n;

			if (have >= AGENT_MAX_ANSWER)
				ereport(ERROR,
						(errcode(ERRCODE_PROTOCOL_VIOLATION),
						 errmsg("the signing agent's answer is malformed"),
						 errdetail("The answer is longer than %d bytes.", AGENT_MAX_ANSWER)));
			n = recv(sock, answer + have, AGENT_MAX_ANSWER - have, 0);
			if (n > 0)
				have += n;
			else if (n == 0)
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("the signing agent closed the connection without an answer"),
						 errdetail_log("hipaa_audit.signing_agent is \"%s\".", ha_signing_agent),
						 errhint("Check the signing agent's log; nothing was signed or stored.")));
			else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				AgentWait(sock, WL_SOCKET_READABLE, deadline);
			else
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("could not read the signing agent's answer: %m"),
						 errdetail_log("hipaa_audit.signing_agent is \"%s\".", ha_signing_agent),
						 errhint("Check the signing agent's log; nothing was signed or stored.")));
		}
		*(char *) memchr(answer, '\n', have) = '\0';
	}
	PG_FINALLY();
	{
		if (sock != PGINVALID_SOCKET)
			close(sock);
	}
	PG_END_TRY();

	return answer;
}

static void
Malformed(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROTOCOL_VIOLATION),
			 errmsg("the signing agent's answer is malformed"),
			 errdetail("%s", detail),
			 errhint("Check that hipaa_audit.signing_agent names the hipaa_audit signing agent; nothing was signed or stored.")));
}

/*
 * Ask the agent; check its answer: "ok <verifier key>[ <signature>]" with
 * a well-formed key of hipaa_audit.signer_name, or "error <code> <text>".
 * Returns the signature part (NULL if none).
 */
static char *
AgentAsk(const char *request, size_t reqlen, const char *name,
		 uint8 pub[HA_ED25519_KEY_LEN], const char *what)
{
	char	   *answer = AgentExchange(request, reqlen);
	char	   *key;
	char	   *sig;
	char	   *p1;
	char	   *p2;
	uint8		id[4];
	uint8		computed[4];
	uint8		blob[1 + HA_ED25519_KEY_LEN];

	for (char *p = answer; *p; p++)
		if ((unsigned char) *p < ' ' || (unsigned char) *p >= 0x7f)
			Malformed("The answer contains a byte that is not printable ASCII.");
	if (strncmp(answer, "error ", 6) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the signing agent refused %s", what),
				 errdetail("The agent answered: %s", answer + 6),
				 errhint("See the signing agent's log; nothing was signed or stored.")));
	if (strncmp(answer, "ok ", 3) != 0)
		Malformed("The answer is neither \"ok\" nor \"error\".");
	key = answer + 3;
	sig = strchr(key, ' ');
	if (sig != NULL)
		*sig++ = '\0';

	/* <name>+<8 hex>+<base64(0x01 || key)>; the key data may hold "+" */
	p1 = strchr(key, '+');
	p2 = p1 ? strchr(p1 + 1, '+') : NULL;
	if (p1 == NULL || p2 == NULL || p1 == key || p1 - key > AGENT_MAX_NAME || p2 - p1 != 9)
		Malformed("The agent's verifier key is not <name>+<key ID>+<key>.");
	*p1 = '\0';
	*p2 = '\0';
	for (int i = 0; i < 4; i++)
	{
		unsigned int v;

		if (!isxdigit((unsigned char) p1[1 + 2 * i]) || !isxdigit((unsigned char) p1[2 + 2 * i]) ||
			sscanf(p1 + 1 + 2 * i, "%2x", &v) != 1)
			Malformed("The agent's key ID is not 8 hex digits.");
		id[i] = (uint8) v;
	}
	if (HaUnbase64(p2 + 1, strlen(p2 + 1), blob, sizeof(blob)) != sizeof(blob) || blob[0] != 0x01)
		Malformed("The agent's key is not base64 of an Ed25519 public key.");
	memcpy(pub, blob + 1, HA_ED25519_KEY_LEN);
	HaKeyId(key, pub, computed);
	if (memcmp(id, computed, 4) != 0)
		Malformed("The agent's key ID does not match its name and key.");
	if (strcmp(key, name) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the signing agent signs as \"%s\", not as hipaa_audit.signer_name \"%s\"",
						key, name),
				 errhint("Set hipaa_audit.signer_name to the agent's name, and reload.")));
	return sig;
}

/* The agent's public key, after checking it answers as signer name. */
void
HaAgentKey(const char *name, uint8 pub[HA_ED25519_KEY_LEN])
{
	static const char request[] = AGENT_MAGIC " key\n";

	if (AgentAsk(request, strlen(request), name, pub, "to give its key") != NULL)
		Malformed("The answer to a key request carries a signature.");
}

/*
 * Have the agent sign a note body; sig receives the key ID and the Ed25519
 * signature, checked against the agent's key, as a note's signature line
 * carries them.
 */
void
HaAgentSign(const char *body, const char *name, uint8 sig[4 + HA_ED25519_SIG_LEN])
{
	size_t		len = strlen(body);
	char	   *request;
	char	   *sigtext;
	uint8		pub[HA_ED25519_KEY_LEN];
	uint8		id[4];

	if (len == 0 || len > AGENT_MAX_BODY)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the note body is too long for the signing agent"),
				 errdetail("It has %zu bytes; the agent signs at most %d.", len, AGENT_MAX_BODY)));
	request = psprintf(AGENT_MAGIC " sign %zu\n%s", len, body);
	sigtext = AgentAsk(request, strlen(request), name, pub, "to sign the note");
	if (sigtext == NULL || HaUnbase64(sigtext, strlen(sigtext), sig, 4 + HA_ED25519_SIG_LEN) != 4 + HA_ED25519_SIG_LEN)
		Malformed("The answer does not carry base64 of a key ID and an Ed25519 signature.");
	HaKeyId(name, pub, id);
	if (memcmp(sig, id, 4) != 0 ||
		!HaEd25519Verify(pub, (const uint8 *) body, len, sig + 4))
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("the signing agent's signature does not verify"),
				 errdetail("The signature is not one of the note by the key the agent announced."),
				 errhint("Check that hipaa_audit.signing_agent names the hipaa_audit signing agent; nothing was signed or stored.")));
	pfree(request);
}
