using System.Buffers.Binary;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using VixAspire.Contracts;

namespace VixAspire.StreamApi.WebSockets;

/// <summary>
/// Reads the headers of the frames a client sends, as they pass under the WebSocket, so that a message whose frames
/// declare more than <see cref="StreamingOptions.MaxRequestBodyBytes"/> is refused as soon as the header arrives:
/// the WebSocket API shows payload bytes only, and a client that declares 2^63 bytes and then sends nothing would
/// hold the socket until a ping went unanswered. Control frames are not counted; an invalid length (top bit set) is
/// left to the WebSocket, which closes with 1002.
/// </summary>
internal sealed class FrameLimit(int limit)
{
    private const int MaxHeaderBytes = 14;

    private readonly TaskCompletionSource _exceeded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly byte[] _header = new byte[MaxHeaderBytes];
    private int _headerBytes;
    private long _payloadLeft;
    private long _messageBytes;
    private bool _lost;

    public int Limit => limit;

    /// <summary>Completes when the frames of one message have declared more than <see cref="Limit"/> bytes.</summary>
    public Task Exceeded => _exceeded.Task;

    /// <summary>Follows the client's bytes, in order, as they are read.</summary>
    public void Read(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty && !_lost && !_exceeded.Task.IsCompleted)
        {
            if (_payloadLeft > 0)
            {
                var skipped = (int)Math.Min(_payloadLeft, data.Length);
                _payloadLeft -= skipped;
                data = data[skipped..];
                continue;
            }

            _header[_headerBytes++] = data[0];
            data = data[1..];
            if (_headerBytes >= 2 && _headerBytes == HeaderLength())
            {
                _headerBytes = 0;
                OnHeader();
            }
        }
    }

    /// <summary>2 bytes, the mask key if any, and the extended length if any (RFC 6455, section 5.2).</summary>
    private int HeaderLength() => 2 + ((_header[1] & 0x80) != 0 ? 4 : 0) + (_header[1] & 0x7F) switch
    {
        126 => 2,
        127 => 8,
        _ => 0,
    };

    private void OnHeader()
    {
        long length = (_header[1] & 0x7F) switch
        {
            126 => BinaryPrimitives.ReadUInt16BigEndian(_header.AsSpan(2)),
            127 => BinaryPrimitives.ReadInt64BigEndian(_header.AsSpan(2)),
            var small => small,
        };
        if (length < 0)
        {
            // Not a valid length: the WebSocket fails the connection itself, and nothing after it is a frame.
            _lost = true;
            return;
        }

        _payloadLeft = length;
        var opcode = _header[0] & 0x0F;
        if (opcode >= 0x8)
        {
            return;
        }

        // Continuation frames add to the message; a text or binary frame starts one. (Compared before adding: a
        // declared length can be as large as long.MaxValue.)
        var before = opcode == 0 ? _messageBytes : 0;
        if (length > limit - before)
        {
            _exceeded.TrySetResult();
        }
        else
        {
            _messageBytes = (_header[0] & 0x80) != 0 ? 0 : before + length;
        }
    }
}

/// <summary>
/// Puts a <see cref="FrameLimit"/> under each WebSocket: the upgrade features (HTTP/1.1 upgrade, HTTP/2 extended
/// CONNECT) hand out a stream that reports what it reads, and the limit is left in the request's features for the
/// socket's receiver. Must run before <c>UseWebSockets</c>, which takes the upgrade features when a request arrives.
/// </summary>
internal static class FrameLimitMiddleware
{
    public static IApplicationBuilder UseWebSocketFrameLimit(this IApplicationBuilder app) => app.Use(static (context, next) =>
    {
        var upgrade = context.Features.Get<IHttpUpgradeFeature>();
        var connect = context.Features.Get<IHttpExtendedConnectFeature>();
        if (upgrade is { IsUpgradableRequest: true } || connect is { IsExtendedConnect: true })
        {
            var options = context.RequestServices.GetRequiredService<IOptionsMonitor<StreamingOptions>>();
            var limit = new FrameLimit(options.CurrentValue.MaxRequestBodyBytes);
            context.Features.Set(limit);
            if (upgrade is not null)
            {
                context.Features.Set<IHttpUpgradeFeature>(new WatchedUpgrade(upgrade, limit));
            }

            if (connect is not null)
            {
                context.Features.Set<IHttpExtendedConnectFeature>(new WatchedConnect(connect, limit));
            }
        }

        return next(context);
    });

    private sealed class WatchedUpgrade(IHttpUpgradeFeature inner, FrameLimit limit) : IHttpUpgradeFeature
    {
        public bool IsUpgradableRequest => inner.IsUpgradableRequest;

        public async Task<Stream> UpgradeAsync() => new WatchedStream(await inner.UpgradeAsync(), limit);
    }

    private sealed class WatchedConnect(IHttpExtendedConnectFeature inner, FrameLimit limit) : IHttpExtendedConnectFeature
    {
        public bool IsExtendedConnect => inner.IsExtendedConnect;

        public string? Protocol => inner.Protocol;

        public async ValueTask<Stream> AcceptAsync() => new WatchedStream(await inner.AcceptAsync(), limit);
    }

    /// <summary>The upgraded stream, unchanged, with every byte read shown to the limit.</summary>
    private sealed class WatchedStream(Stream inner, FrameLimit limit) : Stream
    {
        public override bool CanRead => inner.CanRead;

        public override bool CanWrite => inner.CanWrite;

        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await inner.ReadAsync(buffer, cancellationToken);
            limit.Read(buffer.Span[..read]);
            return read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(Span<byte> buffer)
        {
            var read = inner.Read(buffer);
            limit.Read(buffer[..read]);
            return read;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            inner.WriteAsync(buffer, cancellationToken);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            inner.WriteAsync(buffer, offset, count, cancellationToken);

        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override void Flush() => inner.Flush();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
