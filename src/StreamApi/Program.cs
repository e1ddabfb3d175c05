using VixAspire.StreamApi;
using VixAspire.StreamApi.Inference;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddStreamApiServices();

var app = builder.Build();

app.UseStatusCodePages();
app.MapDefaultEndpoints();
app.MapInferenceApi();

app.Run();

namespace VixAspire.StreamApi
{
    /// <summary>Marker for test hosts (a test project may also see the AppHost's <c>Program</c>).</summary>
    public sealed class StreamApiMarker;
}
