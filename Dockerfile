# Multi-stage: the SDK builds (protoc comes with the Grpc.Tools package), the ASP.NET runtime image runs it as
# the image's non-root user "app" (uid 1654, as k8s/deployment.yaml expects). The admin command is the same
# binary: kubectl exec deploy/messaging -- dotnet Messaging.Node.dll admin cluster show
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY Directory.Build.props Directory.Packages.props ./
COPY src/ src/
RUN dotnet publish src/Node/Node.csproj --configuration Release --output /app

FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /app ./
RUN mkdir /data && chown "$APP_UID" /data
ENV ASPNETCORE_URLS=http://0.0.0.0:8080 \
    Messaging__DataDirectory=/data
# http (public API), remoting, Akka.Management (bootstrap), admin + /metrics
EXPOSE 8080 4053 8558 9090
USER $APP_UID
ENTRYPOINT ["dotnet", "Messaging.Node.dll"]
