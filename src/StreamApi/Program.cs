using VixAspire.StreamApi;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddStreamApiServices();

var app = builder.Build();

app.MapStreamApi();

app.Run();

namespace VixAspire.StreamApi
{
    /// <summary>Marker for test hosts (a test project may also see the AppHost's <c>Program</c>).</summary>
    public sealed class StreamApiMarker;
}
